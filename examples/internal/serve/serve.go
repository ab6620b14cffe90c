// Package serve is what the small example apps (upstream, orders) share:
// flags defaulting to environment variables, parsing them, listening and
// serving until Ctrl-C or SIGTERM.
package serve

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Serve serves h on ln until SIGINT or SIGTERM, then shuts down, giving
// requests in flight 5 s. A clean stop returns nil.
func Serve(ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// EnvOr is the environment variable name, or def when it is unset or empty.
func EnvOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// ListenFlag declares --listen on fs: the host:port to listen on, by
// default $LISTEN, else def.
func ListenFlag(fs *flag.FlagSet, def string) *string {
	return fs.String("listen", EnvOr("LISTEN", def), "host:port to listen on ($LISTEN)")
}

// ParseFlags parses the command line into fs, made with
// flag.ContinueOnError: -h and --help exit 0 after the usage, a bad flag
// exits 2 after the error.
func ParseFlags(fs *flag.FlagSet) {
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
}

// ListenAndServe listens on addr, writes banner(the address bound) to
// stderr and serves h until SIGINT or SIGTERM (Serve). When either fails it
// writes "name: error" to stderr and exits 1.
func ListenAndServe(name, addr string, h http.Handler, banner func(net.Addr) string) {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		fmt.Fprintln(os.Stderr, banner(ln.Addr()))
		err = Serve(ln, h)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}
