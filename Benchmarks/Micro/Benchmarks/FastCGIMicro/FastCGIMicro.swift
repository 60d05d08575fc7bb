// Micro-benchmarks of the per-request work fcgiproxy does besides I/O: decoding the backend's
// records, encoding a request's and a response's records, building the PARAMS stream, mapping an
// HTTP request head to PARAMS, parsing an HTTP/1 request head and the CGI response head. Each reports wall clock,
// throughput and heap allocations (mallocCountTotal, via the MallocInterposer trait) per
// iteration. "Baseline" measures an empty iteration: what the harness itself allocates.
import Benchmark
import FastCGI
import NIOCore
import NIOHTTP1
import ProxyConfig
import ProxyCore

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        maxDuration: .seconds(2),
        maxIterations: 100_000
    )

    Benchmark("Baseline (empty iteration)") { benchmark in
        for index in benchmark.scaledIterations {
            blackHole(index)
        }
    }

    // What PHP-FPM sends back for a 64 KiB page: a CGI head and the body in 8 KiB STDOUT
    // records (PHP's output buffer size), the empty STDOUT record and END_REQUEST.
    let stdoutStream = MicroInputs.stdoutStream(bodyBytes: 64 * 1024, recordBytes: 8 * 1024)
    Benchmark("FastCGI decode STDOUT stream (64 KiB in 8 KiB records)") { benchmark in
        for _ in benchmark.scaledIterations {
            // Moving the reader index of a copy does not copy the storage.
            var buffer = stdoutStream
            var decoder = FastCGIRecordDecoder()
            var contentBytes = 0
            while let record = try decoder.decode(buffer: &buffer) {
                contentBytes &+= record.content.readableBytes
            }
            blackHole(contentBytes)
        }
    }

    // BEGIN_REQUEST and PARAMS of a typical PHP page view through a front controller.
    let params = MicroInputs.phpParams
    Benchmark("PARAMS build (typical PHP request, \(params.count) pairs)") { benchmark in
        for _ in benchmark.scaledIterations {
            var buffer = ByteBufferAllocator().buffer(capacity: 2048)
            buffer.writeFastCGIBeginRequest(requestID: 1, role: .responder, flags: 1)
            var writer = FastCGIParamsWriter(requestID: 1, buffer: buffer)
            for (name, value) in params {
                try writer.append(name: name, value: value)
            }
            blackHole(writer.finish())
        }
    }

    // Everything the proxy sends before the body of a GET: BEGIN_REQUEST (keep-conn), the PARAMS
    // stream and the empty STDIN that ends the (empty) body.
    let encodeBuffer = FastCGIParamsBuffer()
    var encodeScratch = ByteBufferAllocator().buffer(capacity: 2048)
    Benchmark("FastCGI encode request (BEGIN_REQUEST + \(params.count) PARAMS + empty STDIN)") { benchmark in
        for _ in benchmark.scaledIterations {
            // What an exchange does: pairs into the loop's PARAMS buffer, framed into its
            // recycled scratch buffer in one raw pass.
            encodeBuffer.encode { encoder in
                for (name, value) in params { encoder.append(name: name, value: value) }
            }
            encodeScratch.clear()
            encodeBuffer.writeRequestStart(
                requestID: 1, flags: FastCGIConstants.keepConnectionFlag, endingStdin: true, into: &encodeScratch)
            blackHole(encodeScratch.readableBytes)
        }
    }

    // A worker's answer body framed as STDOUT records (65528-byte records, padded to 8) plus the
    // empty record that ends the stream: the copy into one buffer is the cost.
    let body = MicroInputs.body64k
    Benchmark("FastCGI encode STDOUT (64 KiB body + stream end)") { benchmark in
        for _ in benchmark.scaledIterations {
            var records = ByteBuffer()
            records.writeFastCGIStream(type: .stdout, requestID: 1, content: body)
            records.writeFastCGIStreamEnd(type: .stdout, requestID: 1)
            blackHole(records)
        }
    }

    // The front end's first step: a browser's request head, as read from the socket, parsed into
    // an HTTPRequestHead (strict RFC 9112 checks, one String per name and value).
    let browserHeadBytes = MicroInputs.browserHeadBytes
    Benchmark("HTTP/1 head bytes → request head (\(browserHeadBytes.readableBytes) bytes, 15 fields)") { benchmark in
        for _ in benchmark.scaledIterations {
            var parser = HTTP1RequestParser()
            var bytes = browserHeadBytes
            blackHole(try parser.next(&bytes))
        }
    }

    // What the front end does with a parsed request head before any I/O (Exchange.dispatch and
    // framedParams): the request target checked and normalized, the route picked, the script
    // mapped (front controller: no stat), the CGI variables built from the head, each pair's
    // size checked, and BEGIN_REQUEST + PARAMS framed.
    let router = try! Router(routes: MicroInputs.routes)
    let resolver = ScriptResolver()
    let browserHead = MicroInputs.browserHead
    let connection = MicroInputs.connection
    let paramsBuffer = FastCGIParamsBuffer()
    var scratch = ByteBufferAllocator().buffer(capacity: 2048)
    Benchmark("HTTP head → PARAMS (route, CGI mapping, \(browserHead.headers.count) headers, framing)") { benchmark in
        for _ in benchmark.scaledIterations {
            let requestPath = try RequestPath(target: browserHead.uri)
            let host = requestPath.absoluteFormHost ?? browserHead.headers.first(name: "host")
            guard let route = router.route(path: requestPath.path, host: host) else {
                fatalError("no route")
            }
            let script = try resolver.resolve(path: requestPath.path, route: route)
            paramsBuffer.encode { encoder in
                CGIParameters.emit(
                    head: browserHead,
                    requestPath: requestPath,
                    script: script,
                    routeParams: route.params,
                    contentLength: nil,
                    connection: connection,
                    serverSoftware: "fcgiproxy",
                    into: &encoder
                )
            }
            if paramsBuffer.oversizedPair != nil { fatalError("pair too large") }
            // The loop's recycled scratch buffer, as LoopResources hands it out.
            scratch.clear()
            paramsBuffer.writeRequestStart(
                requestID: 1, flags: FastCGIConstants.keepConnectionFlag, endingStdin: true, into: &scratch)
            blackHole(scratch.readableBytes)
        }
    }

    // A PHP response head as PHP-FPM writes it, followed by the start of the body.
    let head = MicroInputs.cgiHead
    Benchmark("CGI response head parse (PHP page, 7 fields)") { benchmark in
        for _ in benchmark.scaledIterations {
            var buffer = head
            var parser = CGIResponseHeadParser()
            switch try parser.feed(&buffer) {
            case .head(let parsed, let body):
                blackHole(parsed.status)
                blackHole(body.readableBytes)
            case .needMoreData:
                fatalError("incomplete head")
            }
        }
    }
}
