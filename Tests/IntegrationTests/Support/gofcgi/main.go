// A FastCGI backend on Go's net/http/fcgi, which multiplexes: it answers FCGI_GET_VALUES with
// FCGI_MPXS_CONNS=1 and serves the requests of one connection concurrently. The integration
// tests build it with `go build` (standard library only) and run it behind fcgiproxy.
//
// Usage: gofcgi unix:/path/to.sock | gofcgi 127.0.0.1:9000
//
// Every request: sleeps ?ms= milliseconds, then answers 200 with the body "id=<?id> pid=<pid>\n"
// and the header X-Backend: gofcgi, so a test can check each answer reached its own client.
// It also prints one line per connection the backend accepted ("accepted N"), so a test can
// count the connections the proxy opened.
package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/fcgi"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

type countingListener struct {
	net.Listener
	accepted int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err == nil {
		fmt.Printf("accepted %d\n", atomic.AddInt64(&l.accepted, 1))
	}
	return conn, err
}

var inFlight, peak int64

func handle(w http.ResponseWriter, r *http.Request) {
	now := atomic.AddInt64(&inFlight, 1)
	defer atomic.AddInt64(&inFlight, -1)
	for {
		seen := atomic.LoadInt64(&peak)
		if now <= seen || atomic.CompareAndSwapInt64(&peak, seen, now) {
			break
		}
	}
	if ms, err := strconv.Atoi(r.URL.Query().Get("ms")); err == nil && ms > 0 {
		time.Sleep(time.Duration(ms) * time.Millisecond)
	}
	w.Header().Set("X-Backend", "gofcgi")
	w.Header().Set("X-Peak", strconv.FormatInt(atomic.LoadInt64(&peak), 10))
	fmt.Fprintf(w, "id=%s pid=%d\n", r.URL.Query().Get("id"), os.Getpid())
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gofcgi unix:/path | host:port")
		os.Exit(2)
	}
	network, address := "tcp", os.Args[1]
	if strings.HasPrefix(address, "unix:") {
		network, address = "unix", strings.TrimPrefix(address, "unix:")
		os.Remove(address)
	}
	listener, err := net.Listen(network, address)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening %s\n", listener.Addr())
	if err := fcgi.Serve(&countingListener{Listener: listener}, http.HandlerFunc(handle)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
