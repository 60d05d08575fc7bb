/// A `match = ~ REGEX` pattern, matched in time linear in the path length.
///
/// Swift `Regex` (like PCRE) backtracks: `^(.+\.php)(/.*)?$` against a long path that does not
/// match takes cubic time and `(a+)+b` exponential, so one request could hold an event loop for
/// seconds. This is a Thompson automaton instead, simulated with every live state at once (a
/// Pike VM without captures): each path scalar costs at most one step per instruction, whatever
/// the pattern. The price is the constructs an automaton cannot express — backreferences,
/// lookaround, atomic groups and possessive quantifiers — which are refused when the pattern is
/// loaded.
///
/// Syntax: literals, `.`, `^`, `$`, `\b`, `\B`, groups `(…)`, `(?:…)` and named groups (as plain
/// groups), `|`, `*`, `+`, `?`, `{n}`, `{n,}`, `{n,m}` (n, m ≤ 1000) and their lazy forms,
/// classes `[…]` and `[^…]` with ranges, `\d \D \w \W \s \S` (ASCII meaning), `\t \n \r`,
/// `\` before any punctuation, and `(?i)` (ASCII case) at the very start.
public struct RouteRegex: Sendable {
    /// Why a pattern was refused, naming the construct.
    public struct SyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
        public var message: String

        public init(_ message: String) {
            self.message = message
        }

        public var description: String { message }
    }

    /// The pattern as written.
    public let pattern: String
    let program: [Instruction]
    /// Every path through the program passes `^` before it consumes anything, so a search
    /// need not start a thread at any later position, and can stop once none is alive.
    private let anchoredAtStart: Bool

    public init(_ pattern: String) throws(SyntaxError) {
        self.pattern = pattern
        self.program = try Compiler.compile(try Parser.parse(pattern))
        self.anchoredAtStart = Self.isAnchoredAtStart(program)
    }

    /// Whether the pattern matches anywhere in `path` (only at its start after `^`, only at its
    /// end before `$`), like `path.contains(regex)`.
    public func matches(_ path: String) -> Bool {
        run(path).matched
    }

    /// The steps (states added to a list) a match of `path` takes: at most `program.count`
    /// per position, for the tests that prove the bound without timing anything.
    func matchSteps(_ path: String) -> Int {
        run(path).steps
    }

    private static func isAnchoredAtStart(_ program: [Instruction]) -> Bool {
        var seen = Array(repeating: false, count: program.count)
        var pending = [0]
        while let pc = pending.popLast() {
            guard !seen[pc] else { continue }
            seen[pc] = true
            switch program[pc] {
            case .scalar, .set, .match: return false
            case .assert(.start): continue
            case .assert: pending.append(pc + 1)
            case .jump(let target): pending.append(target)
            case .split(let first, let second): pending += [first, second]
            }
        }
        return true
    }

    // MARK: Simulation

    /// Runs all threads in lockstep over the path's scalars. Each position has one list of
    /// states; a state enters a list at most once, so a position costs at most one step per
    /// instruction, and nothing ever goes back in the path.
    private func run(_ path: String) -> (matched: Bool, steps: Int) {
        let size = program.count
        // Two lists of two arrays each plus the closure's stack, per call: the value is shared
        // read-only between event loops, so the scratch cannot live in it.
        return withUnsafeTemporaryAllocation(of: Int32.self, capacity: 5 * size) { scratch in
            scratch.initialize(repeating: 0)
            guard let base = scratch.baseAddress else {
                return (false, 0)
            }
            var current = StateList(dense: base, sparse: base + size)
            var following = StateList(dense: base + 2 * size, sparse: base + 3 * size)
            var closure = Closure(program: program, stack: base + 4 * size)
            var scalars = path.unicodeScalars.makeIterator()
            var before: UInt32?
            var after = scalars.next()?.value
            var atStart = true
            while true {
                if atStart || !anchoredAtStart {
                    if closure.add(0, to: &current, before: before, after: after) {
                        return (true, closure.steps)
                    }
                } else if current.count == 0 {
                    return (false, closure.steps)
                }
                guard let scalar = after else {
                    return (false, closure.steps)
                }
                let next = scalars.next()?.value
                following.removeAll()
                for index in 0..<current.count {
                    let pc = Int(current.dense[index])
                    let consumes: Bool
                    switch program[pc] {
                    case .scalar(let expected): consumes = scalar == expected
                    case .set(let set): consumes = set.contains(scalar)
                    default: consumes = false
                    }
                    if consumes, closure.add(pc + 1, to: &following, before: scalar, after: next) {
                        return (true, closure.steps)
                    }
                }
                swap(&current, &following)
                before = scalar
                after = next
                atStart = false
            }
        }
    }

    /// A set of program counters with O(1) insert, lookup and clearing (the sparse-set trick:
    /// `sparse[pc]` says where `pc` sits in `dense`, which is only trusted if it points back).
    private struct StateList {
        let dense: UnsafeMutablePointer<Int32>
        let sparse: UnsafeMutablePointer<Int32>
        private(set) var count = 0

        init(dense: UnsafeMutablePointer<Int32>, sparse: UnsafeMutablePointer<Int32>) {
            self.dense = dense
            self.sparse = sparse
        }

        func contains(_ pc: Int) -> Bool {
            let index = Int(sparse[pc])
            return index < count && dense[index] == Int32(pc)
        }

        mutating func insert(_ pc: Int) {
            sparse[pc] = Int32(count)
            dense[count] = Int32(pc)
            count += 1
        }

        mutating func removeAll() {
            count = 0
        }
    }

    /// Follows splits, jumps and assertions from a state without consuming a scalar. An explicit
    /// stack rather than recursion: a chain of splits can be as long as the program.
    private struct Closure {
        let program: [Instruction]
        /// Room for every instruction: a state is pushed only when it enters the list.
        let stack: UnsafeMutablePointer<Int32>
        private(set) var steps = 0

        init(program: [Instruction], stack: UnsafeMutablePointer<Int32>) {
            self.program = program
            self.stack = stack
        }

        /// Adds `start` and the states it reaches between the scalars `before` and `after`
        /// (nil at the ends of the path); true as soon as one of them is the match.
        mutating func add(_ start: Int, to list: inout StateList, before: UInt32?, after: UInt32?) -> Bool {
            var top = 0
            push(start, &top, &list)
            while top > 0 {
                top -= 1
                let pc = Int(stack[top])
                switch program[pc] {
                case .match:
                    return true
                case .scalar, .set:
                    break
                case .jump(let target):
                    push(target, &top, &list)
                case .split(let first, let second):
                    push(second, &top, &list)
                    push(first, &top, &list)
                case .assert(let assertion):
                    if Self.holds(assertion, before: before, after: after) {
                        push(pc + 1, &top, &list)
                    }
                }
            }
            return false
        }

        private mutating func push(_ pc: Int, _ top: inout Int, _ list: inout StateList) {
            guard !list.contains(pc) else { return }
            list.insert(pc)
            steps += 1
            stack[top] = Int32(pc)
            top += 1
        }

        private static func holds(_ assertion: Assertion, before: UInt32?, after: UInt32?) -> Bool {
            switch assertion {
            case .start: before == nil
            case .end: after == nil
            case .wordBoundary: isWord(before) != isWord(after)
            case .notWordBoundary: isWord(before) == isWord(after)
            }
        }

        private static func isWord(_ scalar: UInt32?) -> Bool {
            guard let scalar else { return false }
            return ScalarSet.wordSet.contains(scalar)
        }
    }
}
