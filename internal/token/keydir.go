package token

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// dirKey is a key read from keys_dir with the hash of its file, so a rescan
// reuses the parsed *Key of an unchanged file. The ring is then built from
// the same pointers and "did the ring change?" is a cheap comparison, which
// keeps the verified-token cache from being purged on every rescan.
type dirKey struct {
	key *Key
	sum [sha256.Size]byte
}

// keyDirScan is one reading of keys_dir.
type keyDirScan struct {
	path     string // the directory read, for messages
	keys     map[string]dirKey
	problems []error // files that could not be used; the others still are
}

// scanKeyDir reads every <kid>.pem of dir. Unlike LoadKeyRing it does not stop
// at a bad file: at run time a half-copied file must not take down the keys
// that work. It fails only when dir itself cannot be read.
func scanKeyDir(dir string, prev map[string]dirKey) (keyDirScan, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return keyDirScan{}, ringError(dir, ErrKeyUnreadable, err.Error())
	}
	scan := keyDirScan{path: dir, keys: map[string]dirKey{}}
	var names []string
	for _, e := range entries {
		// Symlinks count (Kubernetes secret volumes are made of them);
		// directories do not.
		if e.IsDir() || !strings.HasSuffix(e.Name(), keyFileExt) {
			continue
		}
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, name := range names {
		path := filepath.Join(dir, name)
		kid := strings.TrimSuffix(name, keyFileExt)
		data, err := os.ReadFile(path)
		if err != nil {
			scan.problems = append(scan.problems, ringError(path, ErrKeyUnreadable, err.Error()))
			continue
		}
		sum := sha256.Sum256(data)
		if p, ok := prev[kid]; ok && p.sum == sum {
			scan.keys[kid] = p
			continue
		}
		k, err := parseKeyPEM(path, kid, data)
		if err != nil {
			scan.problems = append(scan.problems, err)
			continue
		}
		scan.keys[kid] = dirKey{key: k, sum: sum}
	}
	return scan, nil
}

// algorithms is kid → algorithm of what the scan found.
func (s keyDirScan) algorithms() map[string]string {
	out := make(map[string]string, len(s.keys))
	for kid, k := range s.keys {
		out[kid] = k.key.alg
	}
	return out
}

func (s keyDirScan) kids() []string {
	out := make([]string, 0, len(s.keys))
	for kid := range s.keys {
		out = append(out, kid)
	}
	sort.Strings(out)
	return out
}
