package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-dev/gatehouse/issuer/config"
	"github.com/gatehouse-dev/gatehouse/issuer/oauth2"
)

func newJanitorCmd() *cobra.Command {
	var fromEnv, tokens, requests, grants, events bool
	var cfgFile string
	var keep, retention time.Duration
	var batch int
	cmd := &cobra.Command{
		Use:   "janitor [DSN]",
		Short: "Delete expired tokens, login/consent/logout requests, sessions and replay records in small batches",
		Long: `Delete rows that expired before now minus --keep-if-younger, in batches of
--batch-size rows, each batch its own short transaction so a busy database is
never locked for long. Run it from cron or a Kubernetes CronJob. Select what to
clean with --tokens, --requests, --grants and --revocation-events (default: all
four). Revocation events are deleted once older than
--revocation-events-retention: by default the revocation_events.retention of the
configuration read with --read-from-env or --config (24h when given a DSN).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, _, err := storeFromArgs(cmd, args, fromEnv, cfgFile)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.CheckMigrated(cmd.Context()); err != nil {
				return fmt.Errorf("%w: %w", err, errNotMigratedHint)
			}
			if !tokens && !requests && !grants && !events {
				tokens, requests, grants, events = true, true, true, true
			}
			if !cmd.Flags().Changed("revocation-events-retention") && len(args) == 0 {
				// The issuers' own setting, from the same file and
				// environment the DSN came from.
				if retention, err = configRetention(cfgFile); err != nil {
					return err
				}
			}
			before := time.Now().Add(-keep)
			type target struct {
				name   string
				f      oauth2.Flusher
				on     bool
				events bool // kept for the retention rather than until expiry
			}
			targets := []target{
				{"tokens", st.Tokens(), tokens, false},
				{"login, consent and logout requests", st.Flows(), requests, false},
				{"login sessions", st.LoginSessions(), requests, false},
				{"consent sessions", st.ConsentSessions(), grants, false},
				{"assertion replay records", st.Nonces(), grants, false},
				{"revocation events", st.RevocationEvents(), events, true},
			}
			out := cmd.OutOrStdout()
			for _, t := range targets {
				if !t.on {
					continue
				}
				start := time.Now()
				cutoff := before
				if t.events {
					cutoff = time.Now().Add(-retention)
				}
				n, err := oauth2.Flush(cmd.Context(), t.f, cutoff, batch)
				if err != nil {
					return fmt.Errorf("deleting expired %s (after %d rows): %w", t.name, n, err)
				}
				fmt.Fprintf(out, "Deleted %d expired %s in %s.\n", n, t.name, time.Since(start).Round(time.Millisecond))
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&fromEnv, "read-from-env", "e", false, "read the DSN from the DSN environment variable or the config file")
	addConfigFlag(cmd, &cfgFile)
	cmd.Flags().BoolVar(&tokens, "tokens", false, "delete expired access and refresh tokens and authorization codes")
	cmd.Flags().BoolVar(&requests, "requests", false, "delete expired login/consent/logout requests and login sessions")
	cmd.Flags().BoolVar(&grants, "grants", false, "delete expired remembered consents and assertion replay records")
	cmd.Flags().BoolVar(&events, "revocation-events", false, "delete revocation events older than --revocation-events-retention")
	cmd.Flags().DurationVar(&retention, "revocation-events-retention", 24*time.Hour, "how long revocation events are kept (default: revocation_events.retention of the configuration read, else 24h)")
	cmd.Flags().DurationVar(&keep, "keep-if-younger", 0, "keep rows that expired less than this long ago")
	cmd.Flags().IntVar(&batch, "batch-size", oauth2.DefaultFlushBatch, "rows deleted per transaction")
	return cmd
}

// configRetention is revocation_events.retention as the issuers read it:
// the file cfgFile (if any), then the environment.
func configRetention(cfgFile string) (time.Duration, error) {
	var doc []byte
	if cfgFile != "" {
		b, err := os.ReadFile(cfgFile)
		if err != nil {
			return 0, err
		}
		doc = b
	}
	c, _, err := config.Load(doc, os.Getenv)
	if err != nil {
		return 0, err
	}
	return c.RevocationEvents.Retention, nil
}
