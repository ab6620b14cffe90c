package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// perform is what the `perform` commands that run a grant to its end share:
// the issuer's public API, the client's credentials, the scope and audience
// to request, the token endpoint and how long to wait for the End-User.
type perform struct {
	r               remote
	cred            credentials
	scope, audience []string
	tokenURL        string
	timeout         time.Duration
}

// command builds a perform command with p's flags. Its run gets a context
// that ends on Ctrl-C, SIGTERM or after --timeout; untimed says when the
// command gives up without --timeout.
func (p *perform) command(use, short, long, untimed string, run func(context.Context, *cobra.Command) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return untilInterrupted(cmd, p.timeout, run)
		},
	}
	p.r.addFlags(cmd, true)
	p.cred.register(cmd)
	fl := cmd.Flags()
	fl.StringSliceVar(&p.scope, "scope", []string{"offline", "openid"}, "scopes to request")
	fl.StringSliceVar(&p.audience, "audience", nil, "audiences to request")
	fl.StringVar(&p.tokenURL, "token-url", "", "token endpoint (default <endpoint>/oauth2/token)")
	fl.DurationVar(&p.timeout, "timeout", 0, "give up after this long (default: "+untimed+")")
	return cmd
}

// tokenEndpoint returns the issuer's base URL and the token endpoint:
// --token-url, or <base>/oauth2/token.
func (p *perform) tokenEndpoint() (base, tokenURL string, err error) {
	base, err = p.r.baseURL()
	if err != nil {
		return "", "", err
	}
	tokenURL = p.tokenURL
	if tokenURL == "" {
		tokenURL = base + "/oauth2/token"
	}
	return base, tokenURL, nil
}

// untilInterrupted runs a perform command's run with a context that ends
// on Ctrl-C, SIGTERM or after timeout (when positive).
func untilInterrupted(cmd *cobra.Command, timeout time.Duration, run func(context.Context, *cobra.Command) error) error {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	return run(ctx, cmd)
}
