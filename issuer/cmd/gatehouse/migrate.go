package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/issuer/config"
	sqlstore "github.com/gatehouse-dev/gatehouse/issuer/storage/sql"
)

func newMigrateCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "migrate", Short: "Apply or inspect database migrations"}
	var yes, fromEnv bool
	var cfgFile string
	sqlCmd := &cobra.Command{
		Use:   "sql [DSN]",
		Short: "Apply all pending SQL migrations to the database (DSN argument, or DSN from the environment/config with -e)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, dsn, status, err := migrationStatus(cmd, args, fromEnv, cfgFile)
			if err != nil {
				return err
			}
			defer st.Close()
			pending := 0
			for _, m := range status {
				if !m.Applied {
					pending++
				}
			}
			out := cmd.OutOrStdout()
			if pending == 0 {
				fmt.Fprintln(out, "The database is up to date, no migration to apply.")
				return nil
			}
			fmt.Fprintf(out, "%d migration(s) to apply to %s.\n", pending, redactDSN(dsn))
			if !yes && !confirm(cmd.InOrStdin(), out) {
				return fmt.Errorf("aborted: no migration applied")
			}
			if err := st.Migrate(cmd.Context()); err != nil {
				return err
			}
			fmt.Fprintln(out, "Successfully applied all migrations.")
			return nil
		},
	}
	sqlCmd.Flags().BoolVarP(&yes, "yes", "y", false, "apply without asking")
	sqlCmd.Flags().BoolVarP(&fromEnv, "read-from-env", "e", false, "read the DSN from the DSN environment variable or the config file")
	addConfigFlag(sqlCmd, &cfgFile)

	var statusFromEnv bool
	var statusCfg string
	statusCmd := &cobra.Command{
		Use:   "status [DSN]",
		Short: "Show which migrations are applied",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, _, status, err := migrationStatus(cmd, args, statusFromEnv, statusCfg)
			if err != nil {
				return err
			}
			defer st.Close()
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "VERSION\tNAME\tSTATUS")
			for _, m := range status {
				s := "pending"
				if m.Applied {
					s = "applied " + m.AppliedAt.UTC().Format("2006-01-02 15:04:05Z")
				}
				fmt.Fprintf(w, "%d\t%s\t%s\n", m.Version, m.Name, s)
			}
			return w.Flush()
		},
	}
	statusCmd.Flags().BoolVarP(&statusFromEnv, "read-from-env", "e", false, "read the DSN from the environment or the config file")
	addConfigFlag(statusCmd, &statusCfg)
	cmd.AddCommand(sqlCmd, statusCmd)
	return cmd
}

// migrationStatus opens the database as storeFromArgs does and reads which
// migrations are applied. The caller closes the store.
func migrationStatus(cmd *cobra.Command, args []string, fromEnv bool, cfgFile string) (*sqlstore.Store, string, []sqlstore.MigrationStatus, error) {
	st, dsn, err := storeFromArgs(cmd, args, fromEnv, cfgFile)
	if err != nil {
		return nil, "", nil, err
	}
	status, err := st.MigrationStatus(cmd.Context())
	if err != nil {
		st.Close()
		return nil, "", nil, err
	}
	return st, dsn, status, nil
}

// storeFromArgs opens the database named by the DSN argument, or by the
// environment/config file (-e, -c), for the offline commands.
func storeFromArgs(cmd *cobra.Command, args []string, fromEnv bool, cfgFile string) (*sqlstore.Store, string, error) {
	dsn, err := migrationDSN(args, fromEnv, cfgFile)
	if err != nil {
		return nil, "", err
	}
	st, err := openStore(cmd.Context(), dsn, zap.NewNop())
	return st, dsn, err
}

func migrationDSN(args []string, fromEnv bool, cfgFile string) (string, error) {
	if len(args) == 1 {
		return args[0], nil
	}
	var doc []byte
	if cfgFile != "" {
		b, err := os.ReadFile(cfgFile)
		if err != nil {
			return "", err
		}
		doc = b
	}
	c, _, err := config.Load(doc, os.Getenv)
	if err != nil {
		return "", err
	}
	if c.DSN == "" || (!fromEnv && cfgFile == "" && os.Getenv("DSN") == "") {
		return "", fmt.Errorf("no database given: pass the DSN as an argument, or set DSN and use --read-from-env")
	}
	return c.DSN, nil
}

func confirm(in io.Reader, out io.Writer) bool {
	fmt.Fprint(out, "Apply them? [y/N] ")
	line, _ := bufio.NewReader(in).ReadString('\n')
	line = strings.ToLower(strings.TrimSpace(line))
	return line == "y" || line == "yes"
}

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Configuration helpers"}
	cmd.AddCommand(&cobra.Command{
		Use:   "docs",
		Short: "Print the configuration reference table (kept in docs/configuration.md)",
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprint(cmd.OutOrStdout(), config.MarkdownTable())
		},
	}, &cobra.Command{
		Use:   "env",
		Short: "List every environment variable the issuer reads",
		Run: func(cmd *cobra.Command, args []string) {
			for _, n := range config.EnvNames() {
				fmt.Fprintln(cmd.OutOrStdout(), n)
			}
		},
	})
	return cmd
}
