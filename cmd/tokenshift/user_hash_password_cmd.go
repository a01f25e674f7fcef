package main

import (
	"bufio"
	"errors"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tokenshift/tokenshift/internal/user"
)

func newUserHashPasswordCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "hash-password",
		Short: "Read a password from stdin and print its bcrypt hash for a users file",
		Long: `Reads one password from standard input (the first line, without its newline)
and prints a bcrypt hash to put in the password_hash field of a users file.

  printf '%s' 'correct horse battery staple' | tokenshift user hash-password`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
			if err != nil && !errors.Is(err, io.EOF) {
				return err
			}
			pw := strings.TrimRight(line, "\r\n")
			if pw == "" {
				return usageError{errors.New("no password on stdin")}
			}
			h, err := user.HashPassword(pw)
			if err != nil {
				return usageError{err}
			}
			outln(cmd.OutOrStdout(), h)
			return nil
		},
	}
}
