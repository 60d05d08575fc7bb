import Foundation
import Testing

extension Integration {
    /// Bounded memory: a 200 MiB upload and a 256 MiB download pass through the front end
    /// while its RSS is sampled every 100 ms.
    @Suite struct Memory {
        private static let limitKiB = 64 * 1024

        /// Runs `work` while sampling `front`'s RSS every 100 ms; returns its result and the
        /// largest RSS seen (KiB).
        private func sampling<T: Sendable>(
            _ front: any FrontEnd,
            _ work: @escaping @Sendable () async throws -> T
        ) async throws -> (T, peakKiB: Int) {
            let done = Flag()
            let task = Task {
                defer { done.set() }
                return try await work()
            }
            var peak = front.rssKiB() ?? 0
            while !done.isSet {
                if let rss = front.rssKiB() { peak = max(peak, rss) }
                try await Task.sleep(for: .milliseconds(100))
            }
            if let rss = front.rssKiB() { peak = max(peak, rss) }
            return (try await task.value, peak)
        }

        @Test func upload200MiBWithContentLengthKeepsMemoryBounded() async throws {
            let size = 200 * 1024 * 1024
            let front = try await Fixture.extraFrontEnd { $0.maxBodySize = 256 * 1024 * 1024 }
            defer { front.stop() }
            let dir = try TempDir("fcgiproxy-bigupload")
            let file = dir.file("upload.bin")
            let made = try await ChildProcess.run(
                "/usr/bin/dd",
                ["if=/dev/urandom", "of=\(file)", "bs=1M", "count=\(size / (1024 * 1024))", "iflag=fullblock", "status=none"],
                timeout: .seconds(30))
            try #require(made.exitCode == 0, "\(made.stderrText)")
            let expectedMD5 = try await Util.md5(ofFile: file)

            // Warm up (first connection to the backend, first body) before the baseline.
            let warm = try await Curl.run(["--data-binary", "warm", front.url("/post.php")])
            #expect(warm.status == 200)
            let baseline = try #require(front.rssKiB())

            // -T streams the file (PUT: PHP's post_max_size does not apply to php://input);
            // no Expect so the body follows the head at once.
            let url = front.url("/post.php")
            let (r, peak) = try await sampling(front) {
                try await Curl.run(
                    ["-T", file, "-H", "Expect:", "-H", "Content-Type: application/octet-stream", url],
                    timeout: .seconds(60))
            }
            #expect(r.exitCode == 0, "\(r.stderr)")
            #expect(r.status == 200, "\(r.text.prefix(500))")
            let json = try r.json()
            #expect(json["size"] as? Int == size)
            #expect(json["content_length"] as? String == String(size))
            #expect(json["md5"] as? String == expectedMD5)
            #expect(peak - baseline < Self.limitKiB, "RSS grew from \(baseline) KiB to \(peak) KiB")
        }

        @Test func download256MiBAt50MBpsKeepsMemoryBounded() async throws {
            let front = try await Fixture.extraFrontEnd()
            defer { front.stop() }
            let warm = try await Curl.run([front.url("/big.php?mb=1")], discardBody: true)
            #expect(warm.sizeDownload == 1024 * 1024)
            let baseline = try #require(front.rssKiB())
            let url = front.url("/big.php?mb=256")
            let (r, peak) = try await sampling(front) {
                try await Curl.run(["--limit-rate", "50M", url], discardBody: true, timeout: .seconds(60))
            }
            #expect(r.exitCode == 0, "\(r.stderr)")
            #expect(r.status == 200)
            #expect(r.sizeDownload == 256 * 1024 * 1024)
            #expect(peak - baseline < Self.limitKiB, "RSS grew from \(baseline) KiB to \(peak) KiB")
        }
    }
}
