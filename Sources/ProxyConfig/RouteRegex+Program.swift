extension RouteRegex {
    /// One step of a Thompson automaton. Program counters are indices into the program.
    enum Instruction: Sendable, Equatable {
        /// Consumes this one scalar.
        case scalar(UInt32)
        /// Consumes one scalar of the set.
        case set(ScalarSet)
        /// Goes on at both targets (the order is a backtracker's preference; with no captures
        /// to fill, a simulation that runs every thread at once needs none).
        case split(Int, Int)
        case jump(Int)
        /// Goes on at the next instruction if the assertion holds at this position.
        case assert(Assertion)
        case match
    }

    /// Compiles a ``Node`` to a program, in the classic Thompson shapes: a split before an
    /// optional part, a split and a jump back around a loop. Counted repetition is unrolled,
    /// which is why its counts and the program size are capped.
    struct Compiler {
        /// The program size bound: matching costs at most this many steps per path scalar.
        static let maxInstructions = 10_000

        private var program: [Instruction] = []

        static func compile(_ node: Node) throws(SyntaxError) -> [Instruction] {
            // Sized before emitting: `(a{1000}){1000}` must be refused, not built.
            guard size(of: node) < maxInstructions else {
                throw SyntaxError("pattern too large: it compiles to more than \(maxInstructions) instructions")
            }
            var compiler = Compiler()
            compiler.emit(node)
            compiler.program.append(.match)
            return compiler.program
        }

        /// The instruction count `emit` produces, saturating just above the bound so
        /// nested counts cannot overflow.
        private static func size(of node: Node) -> Int {
            let size: Int
            switch node {
            case .literal, .set, .assertion:
                size = 1
            case .sequence(let items):
                size = items.reduce(0) { $0 + Self.size(of: $1) }
            case .alternation(let branches):
                size = branches.reduce(0) { $0 + Self.size(of: $1) } + 2 * (branches.count - 1)
            case .repetition(let item, let min, let max):
                let one = Self.size(of: item)
                if let max {
                    size = min * one + (max - min) * (one + 1)
                } else {
                    size = min == 0 ? one + 2 : min * one + 1
                }
            }
            return Swift.min(size, maxInstructions)
        }

        private mutating func emit(_ node: Node) {
            switch node {
            case .literal(let scalar):
                program.append(.scalar(scalar))
            case .set(let set):
                program.append(.set(set))
            case .assertion(let assertion):
                program.append(.assert(assertion))
            case .sequence(let items):
                for item in items {
                    emit(item)
                }
            case .alternation(let branches):
                emitAlternation(branches)
            case .repetition(let item, let min, let max):
                emitRepetition(item, min: min, max: max)
            }
        }

        /// `split next-branch`, branch, `jump end` for all but the last branch.
        private mutating func emitAlternation(_ branches: [Node]) {
            var jumps: [Int] = []
            for branch in branches.dropLast() {
                let split = reserve()
                emit(branch)
                jumps.append(reserve())
                program[split] = .split(split + 1, program.count)
            }
            if let last = branches.last {
                emit(last)
            }
            for jump in jumps {
                program[jump] = .jump(program.count)
            }
        }

        /// `min` copies, then either `max - min` optional copies or a loop.
        private mutating func emitRepetition(_ item: Node, min: Int, max: Int?) {
            guard let max else {
                if min == 0 {
                    // split body end; body; jump split
                    let split = reserve()
                    emit(item)
                    program.append(.jump(split))
                    program[split] = .split(split + 1, program.count)
                } else {
                    // body × (min - 1); loop: body; split loop end
                    for _ in 1..<min {
                        emit(item)
                    }
                    let loop = program.count
                    emit(item)
                    program.append(.split(loop, program.count + 1))
                }
                return
            }
            for _ in 0..<min {
                emit(item)
            }
            // Optional copies one after another rather than nested: the same set of paths, and
            // the simulation merges the threads they create.
            for _ in min..<max {
                let split = reserve()
                emit(item)
                program[split] = .split(split + 1, program.count)
            }
        }

        /// A placeholder instruction to patch once its target is known.
        private mutating func reserve() -> Int {
            program.append(.match)
            return program.count - 1
        }
    }
}
