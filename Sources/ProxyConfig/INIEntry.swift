/// A `key = value` line together with where it was found.
struct INIEntry {
    var key: String
    var value: INIValue
    var line: Int
}
