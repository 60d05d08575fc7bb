/// HTTP-date formatting and parsing (RFC 9110 §5.6.7) by plain calendar arithmetic: no
/// Foundation, no `gmtime_r`/`strftime` (locale- and libc-independent, and cheap enough for
/// the Date header and the Last-Modified of every static file).
///
/// Times are whole seconds since 1970-01-01T00:00:00Z (the Unix epoch, leap seconds ignored).
enum HTTPDate {
    private static let dayNames: [String] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let longDayNames: [String] = [
        "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
    ]
    private static let monthNames: [String] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]

    /// The IMF-fixdate for a time, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`, the only form a
    /// sender may generate. Years outside 0...9999 cannot be written in four digits and are
    /// clamped to the first or last second of that range.
    static func format(_ secondsSince1970: Int) -> String {
        // 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z.
        let seconds = min(max(secondsSince1970, -62_167_219_200), 253_402_300_799)
        let days = floorDivide(seconds, 86_400)
        let secondOfDay = seconds - days * 86_400
        let (year, month, day) = civil(fromDays: days)
        // 1970-01-01 was a Thursday (index 4).
        let weekday = (days % 7 + 11) % 7
        var bytes: [UInt8] = []
        bytes.reserveCapacity(29)
        bytes.append(contentsOf: dayNames[weekday].utf8)
        bytes.append(UInt8(ascii: ","))
        bytes.append(UInt8(ascii: " "))
        appendDigits(day, count: 2, to: &bytes)
        bytes.append(UInt8(ascii: " "))
        bytes.append(contentsOf: monthNames[month - 1].utf8)
        bytes.append(UInt8(ascii: " "))
        appendDigits(year, count: 4, to: &bytes)
        bytes.append(UInt8(ascii: " "))
        appendDigits(secondOfDay / 3600, count: 2, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        appendDigits(secondOfDay / 60 % 60, count: 2, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        appendDigits(secondOfDay % 60, count: 2, to: &bytes)
        bytes.append(contentsOf: " GMT".utf8)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The time an HTTP-date names, or nil when `text` is none of the three forms a recipient
    /// must accept (RFC 9110 §5.6.7):
    /// - IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`,
    /// - RFC 850 `Sunday, 06-Nov-94 08:49:37 GMT`,
    /// - asctime `Sun Nov  6 08:49:37 1994` (the day also as `06`).
    ///
    /// Names are case-sensitive, as the grammar says; the weekday must be a valid name but is
    /// not checked against the date (it is redundant, and nginx does not check it either).
    /// Surrounding spaces and tabs are ignored. A two-digit RFC 850 year is taken as 1970–2069
    /// (70–99 → 19xx, 00–69 → 20xx): a fixed window keeps this function pure, and that form has
    /// not been sent by anyone this century. Second 60 (a leap second) is accepted and counts as
    /// the first second of the next minute.
    static func parse(_ text: Substring) -> Int? {
        var bytes = Array(text.utf8)[...]
        while let first = bytes.first, first == 0x20 || first == 0x09 { bytes.removeFirst() }
        while let last = bytes.last, last == 0x20 || last == 0x09 { bytes.removeLast() }
        guard bytes.count >= 24 else { return nil }
        if bytes[bytes.startIndex + 3] == UInt8(ascii: ",") {
            return parseIMFFixdate(bytes)
        }
        if bytes[bytes.startIndex + 3] == UInt8(ascii: " ") {
            return parseAsctime(bytes)
        }
        return parseRFC850(bytes)
    }

    /// `Sun, 06 Nov 1994 08:49:37 GMT`
    private static func parseIMFFixdate(_ bytes: ArraySlice<UInt8>) -> Int? {
        var scanner = Scanner(bytes: bytes)
        guard scanner.name(in: dayNames) != nil, scanner.literal(", "),
            let day = scanner.digits(2), scanner.literal(" "),
            let month = scanner.name(in: monthNames), scanner.literal(" "),
            let year = scanner.digits(4), scanner.literal(" "),
            let time = scanner.timeOfDay(), scanner.literal(" GMT"), scanner.atEnd
        else { return nil }
        return seconds(year: year, month: month + 1, day: day, time: time)
    }

    /// `Sunday, 06-Nov-94 08:49:37 GMT`
    private static func parseRFC850(_ bytes: ArraySlice<UInt8>) -> Int? {
        var scanner = Scanner(bytes: bytes)
        guard scanner.name(in: longDayNames) != nil, scanner.literal(", "),
            let day = scanner.digits(2), scanner.literal("-"),
            let month = scanner.name(in: monthNames), scanner.literal("-"),
            let shortYear = scanner.digits(2), scanner.literal(" "),
            let time = scanner.timeOfDay(), scanner.literal(" GMT"), scanner.atEnd
        else { return nil }
        let year = shortYear < 70 ? 2000 + shortYear : 1900 + shortYear
        return seconds(year: year, month: month + 1, day: day, time: time)
    }

    /// `Sun Nov  6 08:49:37 1994`
    private static func parseAsctime(_ bytes: ArraySlice<UInt8>) -> Int? {
        var scanner = Scanner(bytes: bytes)
        guard scanner.name(in: dayNames) != nil, scanner.literal(" "),
            let month = scanner.name(in: monthNames), scanner.literal(" ")
        else { return nil }
        let day: Int
        if scanner.literal(" ") {
            guard let digit = scanner.digits(1) else { return nil }
            day = digit
        } else {
            guard let digits = scanner.digits(2) else { return nil }
            day = digits
        }
        guard scanner.literal(" "), let time = scanner.timeOfDay(), scanner.literal(" "),
            let year = scanner.digits(4), scanner.atEnd
        else { return nil }
        return seconds(year: year, month: month + 1, day: day, time: time)
    }

    private static func seconds(year: Int, month: Int, day: Int, time: Int) -> Int? {
        guard day >= 1, day <= daysInMonth(year: year, month: month) else { return nil }
        return days(fromCivil: year, month: month, day: day) * 86_400 + time
    }

    private static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (month 1...12). Counts in 400-year
    /// eras that start on March 1st, so that the leap day is the last day of a year.
    static func days(fromCivil year: Int, month: Int, day: Int) -> Int {
        let shiftedYear = month <= 2 ? year - 1 : year
        let era = floorDivide(shiftedYear, 400)
        let yearOfEra = shiftedYear - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The proleptic Gregorian date of a day counted from 1970-01-01; the inverse of
    /// `days(fromCivil:month:day:)`.
    static func civil(fromDays days: Int) -> (year: Int, month: Int, day: Int) {
        let shifted = days + 719_468
        let era = floorDivide(shifted, 146_097)
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    private static func floorDivide(_ value: Int, _ divisor: Int) -> Int {
        let quotient = value / divisor
        return value % divisor < 0 ? quotient - 1 : quotient
    }

    private static func appendDigits(_ value: Int, count: Int, to bytes: inout [UInt8]) {
        var divisor = 1
        for _ in 1..<count { divisor *= 10 }
        while divisor > 0 {
            bytes.append(UInt8(ascii: "0") + UInt8(value / divisor % 10))
            divisor /= 10
        }
    }

    /// Reads the fixed-width pieces of a date left to right.
    private struct Scanner {
        var bytes: ArraySlice<UInt8>

        var atEnd: Bool { bytes.isEmpty }

        mutating func literal(_ text: StaticString) -> Bool {
            let count = text.utf8CodeUnitCount
            guard bytes.count >= count else { return false }
            let matches = text.withUTF8Buffer { expected in
                bytes.prefix(count).elementsEqual(expected)
            }
            if matches { bytes.removeFirst(count) }
            return matches
        }

        /// The index in `names` of the name the text continues with.
        mutating func name(in names: [String]) -> Int? {
            for (index, name) in names.enumerated() where bytes.starts(with: name.utf8) {
                bytes.removeFirst(name.utf8.count)
                return index
            }
            return nil
        }

        mutating func digits(_ count: Int) -> Int? {
            guard bytes.count >= count else { return nil }
            var value = 0
            for byte in bytes.prefix(count) {
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            bytes.removeFirst(count)
            return value
        }

        /// `HH:MM:SS` as seconds into the day.
        mutating func timeOfDay() -> Int? {
            guard let hour = digits(2), hour <= 23, literal(":"),
                let minute = digits(2), minute <= 59, literal(":"),
                let second = digits(2), second <= 60
            else { return nil }
            return hour * 3600 + minute * 60 + second
        }
    }
}
