package session

import (
	"cmp"
	"slices"
	"strings"
)

// A login keeps the client's User-Agent for listings (GET /auth/sessions,
// the operator's views), whole: it is how a user tells a device apart.
// Browser User-Agents are a handful of long phrases around a few version
// numbers, so the record stores each phrase of uaPhrases as one byte below
// 0x20, a byte no recorded User-Agent contains (the login strips control
// characters): the 120-character Edge User-Agent of BenchmarkLoginMemory
// takes 13 bytes. A User-Agent that does contain such a byte is stored as it
// is behind a 0x00 byte.
//
// uaPhrases may only grow at its end: stored logins name phrases by position.
var uaPhrases = [...]string{
	1:  "Mozilla/5.0 (",
	2:  "Windows NT 10.0; Win64; x64",
	3:  ") AppleWebKit/537.36 (KHTML, like Gecko) Chrome/",
	4:  ".0.0.0 Safari/537.36",
	5:  ") AppleWebKit/605.1.15 (KHTML, like Gecko) Version/",
	6:  " Safari/605.1.15",
	7:  "Macintosh; Intel Mac OS X 10_15_7",
	8:  "iPhone; CPU iPhone OS ",
	9:  " like Mac OS X",
	10: " Mobile/15E148 Safari/604.1",
	11: "Linux; Android ",
	12: ".0.0.0 Mobile Safari/537.36",
	13: "X11; Linux x86_64",
	14: "; rv:",
	15: ") Gecko/20100101 Firefox/",
	16: " Edg/",
	17: "iPad; CPU OS ",
	18: "X11; Ubuntu; Linux x86_64",
	19: " OPR/",
	20: "Windows NT 10.0",
	21: "Macintosh; Intel Mac OS X ",
	22: ") AppleWebKit/537.36 (KHTML, like Gecko) ",
	23: ") AppleWebKit/605.1.15 (KHTML, like Gecko) ",
	24: "Safari/537.36",
	25: "Mobile Safari/537.36",
	26: "Chrome/",
	27: "Firefox/",
	28: "Version/",
	29: ".0.0.0",
	30: "Mozilla/5.0",
	31: "; K",
}

// uaByLength is the phrase codes, longest phrase first, for greedy matching.
var uaByLength = func() []byte {
	codes := make([]byte, 0, len(uaPhrases)-1)
	for c := 1; c < len(uaPhrases); c++ {
		codes = append(codes, byte(c))
	}
	slices.SortStableFunc(codes, func(a, b byte) int { return cmp.Compare(len(uaPhrases[b]), len(uaPhrases[a])) })
	return codes
}()

const uaRaw = 0x00

// packUserAgent is the stored form of ua.
func packUserAgent(ua string) []byte {
	for i := range len(ua) {
		if ua[i] < 0x20 {
			return append([]byte{uaRaw}, ua...)
		}
	}
	b := make([]byte, 0, len(ua))
	for i := 0; i < len(ua); {
		code := byte(0)
		for _, c := range uaByLength {
			if strings.HasPrefix(ua[i:], uaPhrases[c]) {
				code = c
				break
			}
		}
		if code == 0 {
			b = append(b, ua[i])
			i++
			continue
		}
		b = append(b, code)
		i += len(uaPhrases[code])
	}
	return b
}

// unpackUserAgent reverses packUserAgent; ok is false for a byte that names
// no phrase.
func unpackUserAgent(b []byte) (string, bool) {
	if len(b) > 0 && b[0] == uaRaw {
		return string(b[1:]), true
	}
	var sb strings.Builder
	for _, c := range b {
		switch {
		case c >= 0x20:
			sb.WriteByte(c)
		case int(c) < len(uaPhrases) && c != 0:
			sb.WriteString(uaPhrases[c])
		default:
			return "", false
		}
	}
	return sb.String(), true
}
