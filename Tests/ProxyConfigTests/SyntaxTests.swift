import ProxyConfig
import Testing

/// Comments, quoting, whitespace and line endings.
@Suite struct SyntaxTests {
    @Test func commentsAndBlankLines() throws {
        let config = try #require(
            parseValid(
                """
                ; a comment
                # another comment
                   ; indented comment

                [server]   ; after a header
                listen = 127.0.0.1:8081   ; inline after spaces
                listen = 127.0.0.1:8082\t# inline after a tab
                server_software = a;b#c   ; no space before ; or # keeps them
                """
            )
        )
        #expect(
            config.server.listen.map(\.address)
                == [.tcp(host: "127.0.0.1", port: 8081), .tcp(host: "127.0.0.1", port: 8082)]
        )
        #expect(config.server.serverSoftware == "a;b#c")
    }

    @Test func quotesKeepCommentCharactersAndSpaces() {
        #expect(parseServer("server_software = \"x ; y # z\"  ; comment")?.serverSoftware == "x ; y # z")
        #expect(parseServer("server_software = \"  padded  \"")?.serverSoftware == "  padded  ")
        #expect(parseServer("server_software = pre\"fix ;\"post")?.serverSoftware == "prefix ;post")
    }

    @Test func quoteEscapes() {
        #expect(parseServer(#"server_software = "say \"hi\" \\ bye""#)?.serverSoftware == #"say "hi" \ bye"#)
        // Other backslashes stay, so quoted regexes need no doubling.
        #expect(parseRoute(#"match = "~ \.php$ ;""#)?.match == .regex(#"\.php$ ;"#))
    }

    @Test func whitespaceAroundKeysValuesAndSectionsIsTrimmed() {
        let config = parseValid("  [ pool : p ]  \n\t backend\t=\t127.0.0.1:9000 \t\n")
        #expect(config?.pools.first?.name == "p")
        #expect(config?.pools.first?.backends == [.tcp(host: "127.0.0.1", port: 9000)])
    }

    @Test func windowsLineEndingsCountAsOneLine() {
        let errors = parseErrors("[server]\r\nthreads = 2\r\nbogus = 1\r\n")
        #expect(errors.map(\.line) == [3])
        #expect(parseValid("[server]\r\nthreads = 2\r\n")?.server.threads == 2)
    }

    @Test func paramValueWithQuotedSemicolon() {
        let route = parseRoute("param = APP_NAME \"a;b\" ; comment")
        #expect(route?.params.first?.name == "APP_NAME")
        #expect(route?.params.first?.value == "a;b")
    }

    @Test func equalsSignInsideValue() {
        #expect(parseRoute("param = QUERY a=b=c")?.params.first?.value == "a=b=c")
    }

    @Test func unterminatedQuoteIsASyntaxError() {
        expectOneError(
            "[server]\n\nserver_software = \"open\n",
            line: 3,
            startingWith: "syntax error: unterminated quoted string"
        )
    }

    @Test func lineWithoutEqualsIsASyntaxError() {
        expectOneError(
            "[server]\nlisten 127.0.0.1:80\n",
            line: 2,
            startingWith: "syntax error: expected \"key = value\""
        )
    }

    @Test func missingKeyIsASyntaxError() {
        expectOneError("[server]\n= 5\n", line: 2, startingWith: "syntax error: missing key")
    }

    @Test func invalidKeyCharactersAreASyntaxError() {
        expectOneError("[server]\nmax body = 5\n", line: 2, startingWith: "syntax error: invalid key \"max body\"")
    }

    @Test func unclosedSectionHeaderIsASyntaxError() {
        expectOneError(
            "\n[server\n",
            line: 2,
            startingWith: "syntax error: section header \"[server\" is missing \"]\""
        )
    }

    @Test func textAfterSectionHeaderIsASyntaxError() {
        expectOneError("[server] extra\n", line: 1, startingWith: "syntax error: unexpected text \"extra\"")
    }
}
