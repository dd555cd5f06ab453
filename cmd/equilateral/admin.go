package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/boombuler/barcode"
	"github.com/boombuler/barcode/qr"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/auth/mfa"
)

// Admins are the people who run the admin commands, each with a TOTP
// secret in an authenticator app (package auth/mfa). From the enhanced
// security level on, the commands that mint creds or change tenants need
// one of their codes (adminFlags.requireMFA).

func newAdminCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Enroll and remove admins, whose one-time codes (TOTP) the credential commands need",
		Long: `Admins prove themselves with a one-time code (TOTP, RFC 6238) from an
authenticator app. From the enhanced security level on, once an admin is
enrolled, every command that mints or rotates creds or changes a tenant
(tenant create/delete, agent and client create/revoke/rotate, admin
enroll/remove) needs one: --otp CODE, env ` + envOTP + `, or an open
` + "`admin session`" + `. See docs/admin-mfa.md.`,
	}
	cmd.AddCommand(newAdminEnrollCommand(), newAdminListCommand(), newAdminRemoveCommand(), newAdminSessionCommand())
	return cmd
}

// adminName checks the NAME argument of admin enroll and remove.
func adminName(_ *cobra.Command, args []string) error {
	if len(args) != 1 {
		return usageError{fmt.Errorf("want one admin NAME as the argument, got %d arguments", len(args))}
	}
	return nil
}

// openAdmins checks that --data-dir is a data dir (no signing key needed:
// admins are not keys) and, on a guarded command, authorizes it.
func (f *adminFlags) openAdmins() error {
	if f.dataDir == "" {
		return usageError{errors.New("--data-dir is required (or set " + envDataDir + ")")}
	}
	if _, err := auth.OpenReadOnly(f.dataDir); err != nil {
		return err
	}
	return f.authorize()
}

func newAdminEnrollCommand() *cobra.Command {
	var (
		flags   adminFlags
		existOK bool
	)
	cmd := &cobra.Command{
		Use:   "enroll NAME --data-dir DIR [--otp CODE]",
		Short: "Enroll an admin: a new TOTP secret, shown as a QR code for an authenticator app",
		Long: `enroll makes admin NAME a TOTP secret (SHA1, 6 digits, 30 s; issuer
Equilateral, account NAME@<operator>) in DIR/admins/NAME.json (0600), and
prints it once as a QR code and an otpauth:// URI: scan it with an
authenticator app. With --json it prints {name, uri} and no QR code.

The first admin needs no code; every later one needs a code of an enrolled
admin (or an open session), from the enhanced level on. Names are
[a-z0-9][a-z0-9_-]{0,63}.
` + dataDirOnly,
		Args: adminName,
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := mfa.ValidateName(name); err != nil {
				return usageError{err}
			}
			// An admin enrolled already is refused before a code is spent.
			if enrolled, err := mfa.Enrolled(flags.dataDir); flags.dataDir != "" && err == nil && slices.Contains(enrolled, name) {
				err := fmt.Errorf("%w: %s", mfa.ErrAdminExists, name)
				if existed(cmd, existOK, err, mfa.ErrAdminExists, "admin "+name) {
					return nil
				}
				return err
			}
			if err := flags.openAdmins(); err != nil {
				return err
			}
			e, err := mfa.Enroll(flags.dataDir, name)
			if err != nil {
				return err
			}
			return printEnrollment(cmd, flags.json, e)
		},
	}
	flags.register(cmd, false)
	flags.requireMFA(cmd)
	flags.quiet = true // the first admin is the fix for "MFA is off"
	existOKFlag(cmd, &existOK)
	return cmd
}

// printEnrollment shows a new admin's secret, once: as a QR code, the
// secret for typing in, and the URI; or, with --json, {name, uri}.
func printEnrollment(cmd *cobra.Command, asJSON bool, e mfa.Enrollment) error {
	if asJSON {
		return printJSON(cmd, struct {
			Name string `json:"name"`
			URI  string `json:"uri"`
		}{e.Name, e.URI})
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "admin %s enrolled (%s in the app)\nscan this with an authenticator app; it is shown once:\n\n", e.Name, e.Account)
	if err := writeQR(out, e.URI, isTerminal(out)); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nsecret %s (to type in instead)\nuri    %s\n", e.Secret, e.URI)
	return nil
}

func newAdminListCommand() *cobra.Command {
	var flags adminFlags
	cmd := &cobra.Command{
		Use:   "list --data-dir DIR",
		Short: "List the enrolled admins",
		Long:  "list shows the enrolled admins, when each enrolled and last gave a code.\n" + dataDirOnly,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := flags.openAdmins(); err != nil {
				return err
			}
			admins, err := mfa.Admins(flags.dataDir)
			if err != nil {
				return err
			}
			if flags.json {
				if admins == nil {
					admins = []mfa.Admin{}
				}
				return printJSON(cmd, admins)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tACCOUNT\tENROLLED\tLAST CODE")
			for _, a := range admins {
				last := "never"
				if !a.LastUsedAt.IsZero() {
					last = a.LastUsedAt.Format("2006-01-02 15:04:05Z")
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", a.Name, a.Account, a.EnrolledAt.Format("2006-01-02 15:04:05Z"), last)
			}
			return w.Flush()
		},
	}
	flags.register(cmd, false)
	return cmd
}

func newAdminRemoveCommand() *cobra.Command {
	var flags adminFlags
	cmd := &cobra.Command{
		Use:   "remove NAME --data-dir DIR --otp CODE",
		Short: "Remove an admin: their codes no longer work",
		Long: `remove deletes admin NAME's secret, so their codes no longer work, and
ends the open session if it was theirs. Removing the last admin turns MFA
off (the guarded commands then warn and run without a code).
` + dataDirOnly,
		Args: adminName,
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := mfa.ValidateName(name); err != nil {
				return usageError{err}
			}
			if err := flags.openAdmins(); err != nil {
				return err
			}
			if err := mfa.Remove(flags.dataDir, name); err != nil {
				return err
			}
			if flags.json {
				return printJSON(cmd, map[string]string{"removed": name})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "admin %s removed\n", name)
			return nil
		},
	}
	flags.register(cmd, false)
	flags.requireMFA(cmd)
	return cmd
}

func newAdminSessionCommand() *cobra.Command {
	var (
		flags adminFlags
		ttl   time.Duration
		end   bool
	)
	cmd := &cobra.Command{
		Use:   "session --data-dir DIR --otp CODE [--for 15m] | --end",
		Short: "Spend one code to open an admin session, so several commands run without one",
		Long: `session spends one admin code and opens a session for --for (15m unless
given, at most 12h): until it expires, the guarded commands of this data
dir run without a code. It is written to DIR/admins/session.json, bound to
the admin's secret, so a session file written or edited by hand is refused.
One session per data dir: a new one replaces the old; --end closes it.
Without a code (--otp or ` + envOTP + `) it shows the open session.
` + dataDirOnly,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := flags.openAdmins(); err != nil {
				return err
			}
			code := flags.code()
			switch {
			case end && code != "":
				return usageError{errors.New("--end closes the session; it takes no code")}
			case end:
				if err := mfa.EndSession(flags.dataDir); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), "admin session ended")
				return nil
			case ttl <= 0 || ttl > mfa.MaxSessionTTL:
				return usageError{fmt.Errorf("--for %s: want more than 0 and at most %s", ttl, mfa.MaxSessionTTL)}
			}
			var (
				s   mfa.Session
				err error
			)
			if code == "" {
				s, err = mfa.CurrentSession(flags.dataDir, time.Now())
				if errors.Is(err, mfa.ErrNoSession) {
					return fmt.Errorf("no admin session is open (open one with --otp CODE or %s)", envOTP)
				}
			} else {
				s, err = mfa.OpenSession(flags.dataDir, code, time.Now(), ttl)
			}
			if err != nil {
				return err
			}
			if flags.json {
				return printJSON(cmd, s)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "admin session of %s open until %s (%s left)\n",
				s.Admin, s.ExpiresAt.Local().Format(time.RFC3339), time.Until(s.ExpiresAt).Round(time.Second))
			return nil
		},
	}
	flags.register(cmd, false)
	otpFlag(cmd, &flags.otp)
	cmd.Flags().DurationVar(&ttl, "for", mfa.DefaultSessionTTL, "how long the session lasts (at most 12h)")
	cmd.Flags().BoolVar(&end, "end", false, "close the open session")
	return cmd
}

// quietZone is the light border a QR code needs around it, in modules.
const quietZone = 4

// writeQR prints content as a QR code in the terminal, dark modules on
// light, two modules per character cell (Unicode half blocks). color sets
// black on white explicitly, for terminals whose background is dark;
// without it the blocks are the dark modules (ink on paper).
func writeQR(w io.Writer, content string, color bool) error {
	code, err := qr.Encode(content, qr.M, qr.Auto)
	if err != nil {
		return fmt.Errorf("QR code: %w", err)
	}
	modules := qrModules(code)
	size := len(modules) + 2*quietZone
	dark := func(x, y int) bool {
		x, y = x-quietZone, y-quietZone
		return y >= 0 && y < len(modules) && x >= 0 && x < len(modules) && modules[y][x]
	}
	var b strings.Builder
	for y := 0; y < size; y += 2 {
		if color {
			b.WriteString("\x1b[30;107m")
		}
		for x := 0; x < size; x++ {
			switch top, bottom := dark(x, y), dark(x, y+1); {
			case top && bottom:
				b.WriteRune('█')
			case top:
				b.WriteRune('▀')
			case bottom:
				b.WriteRune('▄')
			default:
				b.WriteRune(' ')
			}
		}
		if color {
			b.WriteString("\x1b[0m")
		}
		b.WriteByte('\n')
	}
	_, err = io.WriteString(w, b.String())
	return err
}

// qrModules is the code's grid, true for dark.
func qrModules(code barcode.Barcode) [][]bool {
	bounds := code.Bounds()
	grid := make([][]bool, bounds.Dy())
	for y := range grid {
		grid[y] = make([]bool, bounds.Dx())
		for x := range grid[y] {
			r, g, b, _ := code.At(bounds.Min.X+x, bounds.Min.Y+y).RGBA()
			grid[y][x] = r+g+b < 3*0x8000
		}
	}
	return grid
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
