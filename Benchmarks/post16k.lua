-- wrk script for Benchmarks/compare: POST a 16 KiB body (wrk adds Content-Length).
wrk.method = "POST"
wrk.body = string.rep("p", 16384)
wrk.headers["Content-Type"] = "application/octet-stream"
