/// The CGI/1.1 variables of one request (`SCRIPT_FILENAME`, `REQUEST_METHOD`, `HTTP_HOST`, ...), in the order
/// the web server sent them.
///
/// Names and values arrive as bytes; they are decoded as UTF-8 and invalid sequences become U+FFFD, which is
/// what a handler comparing against string literals wants.
public struct FastCGIParams: Sendable, Equatable, Sequence {
    /// One variable as sent by the web server.
    public typealias Element = (name: String, value: String)

    private var pairs: [Element]
    /// The position of the first pair with each name, so lookups stay O(1) however many headers arrive.
    private var firstIndex: [String: Int]

    /// Creates a parameter list from pairs in wire order.
    public init(_ pairs: [(name: String, value: String)] = []) {
        self.pairs = pairs
        self.firstIndex = [:]
        for (index, pair) in pairs.enumerated() where self.firstIndex[pair.name] == nil {
            self.firstIndex[pair.name] = index
        }
    }

    /// The value of the first variable called `name`, or `nil` if the web server did not send it.
    public subscript(name: String) -> String? {
        self.firstIndex[name].map { self.pairs[$0].value }
    }

    /// How many variables the web server sent.
    public var count: Int { self.pairs.count }

    /// Iterates the variables in wire order.
    public func makeIterator() -> IndexingIterator<[Element]> {
        self.pairs.makeIterator()
    }

    /// Two lists are equal when they hold the same pairs in the same order.
    public static func == (lhs: FastCGIParams, rhs: FastCGIParams) -> Bool {
        lhs.pairs.elementsEqual(rhs.pairs) { $0.name == $1.name && $0.value == $1.value }
    }
}
