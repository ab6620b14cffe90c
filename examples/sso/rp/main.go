package rp

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Main runs an app from the command line with def's values as defaults:
// --listen, --base-url, --issuer, --client-id, --client-secret, --other
// title=url (repeatable), each with an environment fallback.
func Main(def Config, defListen string) {
	if err := run(def, defListen, os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(os.Stderr, "%s: %v\n", def.Name, err)
		os.Exit(1)
	}
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func run(cfg Config, defListen string, args []string) error {
	fs := flag.NewFlagSet(cfg.Name, flag.ContinueOnError)
	listen := fs.String("listen", env("LISTEN", defListen), "host:port to listen on ($LISTEN)")
	base := fs.String("base-url", env("BASE_URL", ""), "URL the browser reaches the app at ($BASE_URL; default http://<listen>)")
	fs.StringVar(&cfg.Issuer, "issuer", env("ISSUER_URL", "http://127.0.0.1:4444"), "the OpenID provider ($ISSUER_URL)")
	fs.StringVar(&cfg.ClientID, "client-id", env("CLIENT_ID", cfg.ClientID), "OAuth2 client ID ($CLIENT_ID)")
	fs.StringVar(&cfg.ClientSecret, "client-secret", env("CLIENT_SECRET", cfg.ClientSecret), "OAuth2 client secret ($CLIENT_SECRET)")
	others := map[string]string{}
	if v := os.Getenv("OTHER_APPS"); v != "" {
		for _, kv := range strings.Split(v, ",") {
			if t, u, ok := strings.Cut(kv, "="); ok {
				others[t] = u
			}
		}
	}
	fs.Func("other", "link to another app of the demo, title=url (repeatable; $OTHER_APPS=t=u,t=u)", func(s string) error {
		t, u, ok := strings.Cut(s, "=")
		if !ok {
			return errors.New("want title=url")
		}
		others[t] = u
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.Others = others
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	cfg.BaseURL = *base
	if cfg.BaseURL == "" {
		cfg.BaseURL = "http://" + ln.Addr().String()
	}
	log, err := zap.NewProduction()
	if err != nil {
		return err
	}
	log = log.With(zap.String("app", cfg.Name))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The issuer may still be starting: retry discovery for a while.
	var app *App
	for attempt := 0; ; attempt++ {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		app, err = New(dctx, cfg, log)
		cancel()
		if err == nil {
			break
		}
		if attempt >= 30 || ctx.Err() != nil {
			return err
		}
		time.Sleep(time.Second)
	}
	srv := &http.Server{Handler: app.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("listening", zap.String("url", cfg.BaseURL), zap.String("issuer", cfg.Issuer))
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
