#!/usr/bin/env bash
# Writes the seed corpora under Fuzz/Corpus/ (committed; rerun after changing this script).
# The requests, CGI heads and INI files come from the unit tests and config/.
#
# HTTP1Parser and CGIResponseHead inputs start with two control bytes (where to split the rest
# into two reads, and the limits), FastCGIRecords inputs with one (the split): see each target.
set -euo pipefail
cd "$(dirname "$0")"
root=..
corpus=Corpus
rm -rf "$corpus"
mkdir -p "$corpus"/{http1,fastcgi,cgi-head,config,http1-diff,h2}

n=0
# seed DIR PREFIX TEXT: TEXT (printf escapes) behind PREFIX (printf escapes) in DIR/NN.
seed() {
    n=$((n + 1))
    printf "$2$3" > "$corpus/$1/$(printf '%02d' $n)"
}

# HTTP/1 requests (Tests/ProxyCoreTests/Frontend/HTTP1, Tests/ProxyCoreTests/Frontend).
requests=(
    'GET / HTTP/1.1\r\nHost: a\r\n\r\n'
    'GET /x HTTP/1.0\r\n\r\n'
    '\r\n\r\nGET / HTTP/1.1\r\n\r\n'
    'GET /a?b=c#d HTTP/1.1\r\n\r\n'
    'FOO / HTTP/1.1\r\n\r\n'
    'GET / HTTP/1.1\r\nA:x\r\nB: \t x \t y \t \r\nC:\r\nD: \t \r\nx-MiXed: 1\r\nA: 2\r\n\r\n'
    "GET / HTTP/1.1\r\n!#\$%%&'*+-.^_\`|~09azAZ: v\r\n\r\n"
    'POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello'
    'PUT / HTTP/1.1\r\ncontent-length: \t 0005 \t\r\n\r\na\r\n\0b'
    'POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi'
    'POST / HTTP/1.1\r\nTransfer-Encoding: \t CHUNKED \t\r\n\r\nb\r\nhello world\r\n0\r\n\r\n'
    'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1;x="y"\r\nabc\r\n0\r\nTrailer-A: 1\r\n\r\n'
    'GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n'
    'POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\n\r\n'
    'POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /b HTTP/1.1\r\n\r\n'
    'GET /app/index.php HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n'
    'POST /app/index.php HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n'
    'POST /app/index.php HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd'
    'POST /app/index.php HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n'
    'GET /app/missing.php HTTP/1.1\r\nHost: example.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: \r\n\r\n'
    'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n'
    'GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nz'
)
for request in "${requests[@]}"; do
    seed http1 '\x80\x00' "$request"
    seed http1-diff '' "$request"
done
# The same with the second read starting at the first byte, and with small limits.
seed http1 '\x00\x00' "${requests[10]}"
seed http1 '\xff\x00' "${requests[13]}"
seed http1 '\x40\x21' "${requests[5]}"

# FastCGI streams: BEGIN_REQUEST, PARAMS (short and long lengths), STDIN, STDOUT, END_REQUEST,
# GET_VALUES, UNKNOWN_TYPE, padding.
begin='\x01\x01\x00\x01\x00\x08\x00\x00\x00\x01\x01\x00\x00\x00\x00\x00'
params='\x01\x04\x00\x01\x00\x2a\x06\x00\x0e\x03REQUEST_METHODGET\x0b\x0aSCRIPT_NAME/index.php\x00\x00\x00\x00\x00\x00'
longparam='\x01\x04\x00\x01\x00\x09\x00\x00\x80\x00\x00\x01\x03Xabc'
emptyparams='\x01\x04\x00\x01\x00\x00\x00\x00'
stdin='\x01\x05\x00\x01\x00\x05\x03\x00hello\x00\x00\x00\x01\x05\x00\x01\x00\x00\x00\x00'
stdout='\x01\x06\x00\x01\x00\x1f\x01\x00Status: 200 OK\r\nX-A: b\r\n\r\nhello\x00'
stderr='\x01\x07\x00\x01\x00\x03\x00\x00err'
end='\x01\x03\x00\x01\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00'
getvalues='\x01\x09\x00\x00\x00\x10\x00\x00\x0e\x00FCGI_MAX_CONNS'
unknown='\x01\x0b\x00\x00\x00\x08\x00\x00\x63\x00\x00\x00\x00\x00\x00\x00'
seed fastcgi '\x80' "$begin$params$longparam$emptyparams$stdin"
seed fastcgi '\x30' "$stdout$stderr$end"
seed fastcgi '\x00' "$getvalues"
seed fastcgi '\x80' "$unknown"
seed fastcgi '\x10' "$begin$end"
seed fastcgi '\x80' '\x0b\x0eSCRIPT_NAME/index.php\x00\x00\x80\x00\x00\x02\x00xy'
seed fastcgi '\x80' '\x02\x00\x00\x01\x00\x00\x00\x00'

# CGI response heads (Tests/ProxyCoreTests/CGI/CGIResponseHeadParserTests.swift).
heads=(
    'Status: 404 Not Found\r\nContent-Type: text/html\r\nSet-Cookie: a=1\r\nX-Powered-By:  PHP \nSet-Cookie: b=2\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello'
    'Status: 404 Not Found\r\nX-New: 1\r\n\r\nbody'
    'X-A: 1\n\n'
    '\nx'
    'X-A: \t a\tb \t\r\nX-Empty:\r\nX-Spaces:   \r\n\r\n'
    'Transfer-Encoding: chunked\r\nConnection: close\r\nKeep-Alive: timeout=5\r\nUpgrade: h2c\r\nProxy-Connection: x\r\nTE: trailers\r\nTrailer: X\r\nX-Kept: 1\r\n\r\n'
    'Set-Cookie: a=1\r\nX-A: 1\r\nSet-Cookie: b=2, c=3\r\nSet-Cookie: d=4\r\n\r\n'
    'Content-Length: 7\r\nContent-Length: 7\r\n\r\n1234567'
    'Location: /other.php?x=1\r\n\r\n'
    'Location: //evil.example/x\r\n\r\n'
    'Location: /x\r\nSet-Cookie: a=1\r\n\r\n'
    'Location: https://example.com/x\r\n\r\n'
    'Status: 301 Moved\r\nLocation: /x\r\n\r\n'
    'Location: http://a/\r\nStatus: 307\r\n\r\n'
    'X-A: a\r\n continued\r\n\r\n'
)
for head in "${heads[@]}"; do
    seed cgi-head '\x80\x00' "$head"
done
seed cgi-head '\x20\x41' "${heads[0]}"

# INI: the examples as they are, and the reference file without its comments.
for file in "$root"/config/examples/*.ini; do
    cp "$file" "$corpus/config/$(basename "$file")"
done
grep -v '^[[:space:]]*[;#]' "$root/config/fcgiproxy.ini" | grep -v '^[[:space:]]*$' > "$corpus/config/fcgiproxy.ini"
# Every commented-out key of the reference file, switched on.
sed -n 's/^[;#] *\(\[[a-z]*\(:[A-Za-z0-9._-]*\)\?\]\|[a-z_0-9]\+ = .*\)$/\1/p' "$root/config/fcgiproxy.ini" \
    > "$corpus/config/all-keys.ini"
seed config '' '[server]\nlisten = 127.0.0.1:8080\n\n[pool:php]\nbackend = unix:/run/php.sock\n\n[route:app]\nmatch = ^/app/(.*\\.php)$\nscript = /srv/$1\npool = php\n'
seed config '' '[server]\nserver_software = "a ; b # \\"c\\""\nmax_body_size = 1m\nidle_timeout = 500ms\n'

# HTTP/2 frames after the client preface (the target adds it): SETTINGS, HEADERS (HPACK static
# entries: GET/POST, http, /, a literal :authority), DATA, CONTINUATION, WINDOW_UPDATE, PING,
# PRIORITY, RST_STREAM, GOAWAY. The control byte: bit 1 empty response bodies, bits 2-6 read size.
settings='\x00\x00\x00\x04\x00\x00\x00\x00\x00'
settings_ack='\x00\x00\x00\x04\x01\x00\x00\x00\x00'
settings_values='\x00\x00\x0c\x04\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x64\x00\x04\x00\x00\xff\xff'
get='\x00\x00\x0e\x01\x05\x00\x00\x00\x01\x82\x86\x84\x41\x09localhost'
get3='\x00\x00\x0e\x01\x05\x00\x00\x00\x03\x82\x86\x84\x41\x09localhost'
post_head='\x00\x00\x0e\x01\x04\x00\x00\x00\x01\x83\x86\x84\x41\x09localhost'
data_end='\x00\x00\x05\x00\x01\x00\x00\x00\x01hello'
data='\x00\x00\x05\x00\x00\x00\x00\x00\x01hello'
head_open='\x00\x00\x03\x01\x01\x00\x00\x00\x01\x82\x86\x84'
continuation='\x00\x00\x0b\x09\x04\x00\x00\x00\x01\x41\x09localhost'
window='\x00\x00\x04\x08\x00\x00\x00\x00\x00\x00\x01\x00\x00'
ping='\x00\x00\x08\x06\x00\x00\x00\x00\x00\x01\x02\x03\x04\x05\x06\x07\x08'
priority='\x00\x00\x05\x02\x00\x00\x00\x00\x03\x00\x00\x00\x01\x10'
rst='\x00\x00\x04\x03\x00\x00\x00\x00\x01\x00\x00\x00\x08'
goaway='\x00\x00\x08\x07\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00'
seed h2 '\x00' "$settings$get"
seed h2 '\x00' "$settings$settings_ack$post_head$data$data_end"
seed h2 '\x02' "$settings_values$get$get3$ping$window"
seed h2 '\x00' "$settings$head_open$continuation"
seed h2 '\x00' "$settings$post_head$rst$priority$goaway"
seed h2 '\x15' "$settings$get$get3"
seed h2 '\x81' 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'"$settings$get"
