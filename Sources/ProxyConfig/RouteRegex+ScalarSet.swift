extension RouteRegex {
    /// The scalars one instruction accepts (a class, `.`, `\d`, a case-folded letter).
    ///
    /// Paths are nearly all ASCII, so that part is a 128-bit map tested with one shift; scalars
    /// above it fall back to a binary search over sorted ranges.
    struct ScalarSet: Sendable, Equatable {
        typealias Ranges = [ClosedRange<UInt32>]

        static let maxScalar: UInt32 = 0x10FFFF
        static let digit: Ranges = [0x30...0x39]
        static let word: Ranges = [0x30...0x39, 0x41...0x5A, 0x5F...0x5F, 0x61...0x7A]
        /// What `\b` looks for on either side.
        static let wordSet = ScalarSet(word)
        /// Tab, LF, VT, FF, CR and space: `\s` in its ASCII meaning.
        static let space: Ranges = [0x09...0x0D, 0x20...0x20]
        /// `.`: everything but LF, as in PCRE (and so nginx).
        static let dot = ScalarSet([0x00...0x09, 0x0B...maxScalar])

        private var asciiLow: UInt64 = 0
        private var asciiHigh: UInt64 = 0
        /// Sorted, disjoint and above ASCII.
        private var wide: Ranges = []

        /// The union of `ranges` (in any order, overlapping or not), or its complement.
        init(_ ranges: Ranges, negated: Bool = false) {
            var normalized = Self.normalized(ranges)
            if negated {
                normalized = Self.complement(normalized)
            }
            for range in normalized {
                if range.lowerBound < 128 {
                    for scalar in range.lowerBound...min(range.upperBound, 127) {
                        if scalar < 64 {
                            asciiLow |= 1 << UInt64(scalar)
                        } else {
                            asciiHigh |= 1 << UInt64(scalar - 64)
                        }
                    }
                }
                if range.upperBound >= 128 {
                    wide.append(max(range.lowerBound, 128)...range.upperBound)
                }
            }
        }

        func contains(_ scalar: UInt32) -> Bool {
            if scalar < 64 {
                return asciiLow & (1 << UInt64(scalar)) != 0
            }
            if scalar < 128 {
                return asciiHigh & (1 << UInt64(scalar - 64)) != 0
            }
            var low = 0
            var high = wide.count
            while low < high {
                let middle = (low + high) / 2
                if wide[middle].upperBound < scalar {
                    low = middle + 1
                } else {
                    high = middle
                }
            }
            return low < wide.count && wide[low].lowerBound <= scalar
        }

        /// Sorted, with overlapping and touching ranges merged.
        static func normalized(_ ranges: Ranges) -> Ranges {
            var result: Ranges = []
            for range in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
                if let last = result.last, range.lowerBound <= last.upperBound &+ 1 {
                    result[result.count - 1] = last.lowerBound...max(last.upperBound, range.upperBound)
                } else {
                    result.append(range)
                }
            }
            return result
        }

        /// Every scalar not in `ranges`, which must be normalized.
        static func complement(_ ranges: Ranges) -> Ranges {
            var result: Ranges = []
            var next: UInt32 = 0
            for range in ranges {
                if range.lowerBound > next {
                    result.append(next...(range.lowerBound - 1))
                }
                next = range.upperBound + 1
            }
            if next <= maxScalar {
                result.append(next...maxScalar)
            }
            return result
        }

        /// `ranges` plus the other case of every ASCII letter in them, for `(?i)`. Only ASCII
        /// is folded: Unicode case folding maps some scalars to several, which one instruction
        /// per scalar cannot express.
        static func caseFolded(_ ranges: Ranges) -> Ranges {
            var result = ranges
            let offset: UInt32 = 0x20
            for range in ranges {
                if let upper = clamped(range, to: 0x41...0x5A) {
                    result.append((upper.lowerBound + offset)...(upper.upperBound + offset))
                }
                if let lower = clamped(range, to: 0x61...0x7A) {
                    result.append((lower.lowerBound - offset)...(lower.upperBound - offset))
                }
            }
            return result
        }

        private static func clamped(_ range: ClosedRange<UInt32>, to limits: ClosedRange<UInt32>)
            -> ClosedRange<UInt32>?
        {
            range.overlaps(limits) ? range.clamped(to: limits) : nil
        }
    }
}
