package admin

import (
	"unicode/utf8"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/termsafe"
)

// checkText refuses operator-written text that the API would store and other
// operators later read in a terminal or on the dashboard (a suspension or
// rotation reason, a user id, a rollout seed), by the rule the flag audit
// already follows: no control characters, no Unicode format characters, valid
// UTF-8 (termsafe.Check). The detail names the field, the character and its
// byte offset, so the operator can find it.
func checkText(field, s string) error {
	if err := termsafe.Check(s); err != nil {
		return auth.Wrap(err, auth.CodeInvalidRequest, field+": "+err.Error())
	}
	return nil
}

// firstInvalidUTF8 is the offset of the first byte of b that is not UTF-8.
func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}
