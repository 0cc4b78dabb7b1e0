package relay

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"io"
	"os"
	"strings"

	"github.com/custos/custos"
)

// EnvCredentials names the environment variable that, when set, holds the
// relay's submission credentials in the file format (usually one line).
const EnvCredentials = "CUSTOS_SMTP_CREDENTIALS"

// MinPasswordLen is the shortest password LoadCredentials accepts: these
// are machine credentials, so there is no reason for a short one.
const MinPasswordLen = 16

const maxCredentialsFile = 64 << 10

// Credentials are the user names and passwords the marketplace's mail
// system authenticates with (AUTH PLAIN). Only SHA-256 digests are kept;
// Check compares them in constant time. Safe for concurrent use.
type Credentials struct {
	users []credential
}

type credential struct {
	user [sha256.Size]byte
	pass [sha256.Size]byte
	name string
}

// Len returns the number of credentials.
func (c *Credentials) Len() int {
	if c == nil {
		return 0
	}
	return len(c.users)
}

// Check reports whether user and password match a credential, and returns
// the matching user name. Every credential is compared, user and password
// in constant time, so the time taken does not depend on which part was
// wrong or on how much of it matched.
func (c *Credentials) Check(user, password string) (string, bool) {
	if c == nil {
		return "", false
	}
	u := sha256.Sum256([]byte(user))
	p := sha256.Sum256([]byte(password))
	match := 0
	name := ""
	for i := range c.users {
		cu := &c.users[i]
		ok := subtle.ConstantTimeCompare(u[:], cu.user[:]) & subtle.ConstantTimeCompare(p[:], cu.pass[:])
		if ok == 1 {
			name = cu.name
		}
		match |= ok
	}
	return name, match == 1
}

// LoadCredentials reads credentials from env when it is not empty (the
// value of EnvCredentials), else from the file at path. path "" with an
// empty env gives no credentials and no error.
//
// The format is one "user:password" a line; blank lines and lines starting
// with '#' are skipped. User names are 1–64 characters without ':' or
// whitespace; passwords at least MinPasswordLen bytes. The file MUST be a
// regular file with no permission bit beyond 0600; anything else is
// refused with EINVALID before it is read. Errors name the path and line,
// never a secret.
func LoadCredentials(path, env string) (*Credentials, error) {
	if env != "" {
		return parseCredentials(EnvCredentials, []byte(env))
	}
	if path == "" {
		return &Credentials{}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, custos.Errorf(custos.EINVALID, "credentials file %s: cannot open", path)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, custos.Errorf(custos.EINVALID, "credentials file %s: cannot stat", path)
	}
	if !fi.Mode().IsRegular() {
		return nil, custos.Errorf(custos.EINVALID, "credentials file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&^0o600 != 0 {
		return nil, custos.Errorf(custos.EINVALID, "credentials file %s has mode %#o, looser than 0600: run chmod 600 %s", path, perm, path)
	}
	raw, err := io.ReadAll(io.LimitReader(f, maxCredentialsFile+1))
	defer clear(raw)
	if err != nil {
		return nil, custos.Errorf(custos.EINVALID, "credentials file %s: cannot read", path)
	}
	if len(raw) > maxCredentialsFile {
		return nil, custos.Errorf(custos.EINVALID, "credentials file %s is larger than %d bytes", path, maxCredentialsFile)
	}
	return parseCredentials(path, raw)
}

func parseCredentials(source string, raw []byte) (*Credentials, error) {
	c := &Credentials{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 0, 4096), maxCredentialsFile)
	line := 0
	for sc.Scan() {
		line++
		l := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(l) == "" || strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		user, pass, ok := strings.Cut(l, ":")
		bad := func(msg string) error {
			return &custos.Error{Code: custos.EINVALID, Message: source + ": " + msg, Line: line}
		}
		switch {
		case !ok:
			return nil, bad("want user:password")
		case user == "" || len(user) > 64 || strings.ContainsFunc(user, func(r rune) bool { return r <= ' ' || r == 0x7f }):
			return nil, bad("user name must be 1 to 64 characters without whitespace or control characters")
		case len(pass) < MinPasswordLen:
			return nil, bad("password is shorter than the minimum length")
		}
		for i := range c.users {
			if c.users[i].name == user {
				return nil, bad("user name appears twice")
			}
		}
		c.users = append(c.users, credential{user: sha256.Sum256([]byte(user)), pass: sha256.Sum256([]byte(pass)), name: user})
	}
	if err := sc.Err(); err != nil {
		return nil, custos.Errorf(custos.EINVALID, "%s: line too long", source)
	}
	return c, nil
}
