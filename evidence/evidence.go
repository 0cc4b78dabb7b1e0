// Package evidence builds and verifies evidence bundles: one JSON file that
// carries an alert, the audit entries behind it with their RFC 6962
// inclusion proofs, the signed checkpoint those proofs are against and the
// log's verifier key, so anyone can check it offline (custos verify
// --bundle FILE).
//
// What a bundle proves. An alert is detection's opinion and is not itself
// in the audit log, so a bundle cannot prove an alert is "true". It proves:
//
//   - each evidence entry is, byte for byte, the entry at its index in the
//     log whose signed checkpoint the bundle carries;
//   - at export time the log recorded an export entry (actor, time) whose
//     alert_sha256 commits to the exact alert section of the bundle, so the
//     alert text, employee, detector and evidence list cannot be edited
//     after export without breaking that commitment;
//   - with the embedded key only, that the file is self-consistent; only a
//     verifier key obtained out of band (--key audit.pub) ties the
//     checkpoint to the real log.
//
// Verify also requires the file to be byte-for-byte in the canonical form
// Marshal writes, so any edit anywhere in it fails.
package evidence

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/audit"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Format and Version name the bundle format this package writes and reads.
const (
	Format  = "custos-evidence-bundle"
	Version = 1
)

// MaxBundleBytes bounds what Verify reads: MaxAlertEvidence entries of at
// most 64 KiB each, with proofs, fit well inside it.
const MaxBundleBytes = 128 << 20

// Detail keys of the export entry Build appends.
const (
	DetailBundle      = "evidence_bundle" // the format version
	DetailAlertSHA256 = "alert_sha256"    // hex SHA-256 of the alert section
)

// maxBuildAttempts bounds how often Build re-reads the proofs when the log
// publishes a new checkpoint in the middle of a build.
const maxBuildAttempts = 5

// Log is what Build needs of the audit log (audit.Log).
//
// Append MUST return only once the entry is durable. Entry returns an
// entry, its inclusion proof and the signed checkpoint the proof is
// against, publishing a checkpoint first if the entry is not yet under one.
type Log interface {
	custos.Appender
	Entry(ctx context.Context, index uint64) (entry []byte, proof [][]byte, checkpoint []byte, err error)
}

// Bundle is the file. Field order is the wire order.
type Bundle struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	// Alert is the alert section, exactly as hashed into the export entry.
	Alert json.RawMessage `json:"alert"`
	// Export is the log entry that commits to Alert.
	Export Entry `json:"export"`
	// Entries are the alert's evidence, in the alert's order.
	Entries []Entry `json:"entries"`
	// Checkpoint is the signed note every proof is against.
	Checkpoint string `json:"checkpoint"`
	// VerifierKey is the note verifier key of the log (audit.pub).
	VerifierKey string `json:"verifier_key"`
}

// Entry is one log entry with its inclusion proof.
type Entry struct {
	Index uint64   `json:"index"`
	Leaf  []byte   `json:"leaf"`  // canonical entry bytes (base64 in JSON)
	Proof [][]byte `json:"proof"` // RFC 6962 inclusion proof hashes
}

// Alert is the alert section: the fields of custos.Alert that describe the
// finding. Status and history are left out on purpose: they change after
// export and are not evidence.
type Alert struct {
	ID          string    `json:"id"`
	Employee    string    `json:"employee"`
	Team        string    `json:"team,omitempty"`
	Detector    string    `json:"detector"`
	Severity    string    `json:"severity"`
	Score       float64   `json:"score"`
	Explanation string    `json:"explanation"`
	Evidence    []uint64  `json:"evidence"`
	Sellers     []string  `json:"sellers,omitempty"`
	FirstSeen   time.Time `json:"first_seen"`
	LastSeen    time.Time `json:"last_seen"`
}

// Report is what a successful Verify checked.
type Report struct {
	Alert          Alert
	Entries        int    // evidence entries whose proofs verified
	Origin         string // the log's name (checkpoint origin)
	TreeSize       uint64 // checkpoint tree size
	RootHash       string // checkpoint root, base64
	ExportIndex    uint64
	ExportedBy     string    // actor id of the export entry
	ExportedAt     time.Time // time of the export entry
	TrustedKeyUsed bool      // the checkpoint verified with a key given out of band
}

// Build exports alert's evidence. It first appends an export entry (action
// alert.read on the alert, by the principal in ctx, at now) whose detail
// commits to the alert section, then reads every evidence entry and the
// export entry with inclusion proofs against one signed checkpoint.
// verifierKey is the log's note verifier key. The append is the audit
// record of the export: if it fails, nothing is exported.
func Build(ctx context.Context, log Log, verifierKey string, alert *custos.Alert, now time.Time) (*Bundle, error) {
	if alert == nil || alert.ID == "" {
		return nil, custos.Errorf(custos.EINVALID, "evidence: no alert")
	}
	if len(alert.Evidence) > custos.MaxAlertEvidence {
		return nil, custos.Errorf(custos.ETOOLARGE, "evidence: alert has more than %d evidence entries", custos.MaxAlertEvidence)
	}
	if _, err := note.NewVerifier(strings.TrimSpace(verifierKey)); err != nil {
		return nil, custos.Errorf(custos.EINVALID, "evidence: bad verifier key")
	}
	section, err := marshalAlert(alertSection(alert))
	if err != nil {
		return nil, err
	}
	p, ok := custos.PrincipalFrom(ctx)
	if !ok {
		return nil, custos.Errorf(custos.EUNAUTHORIZED, "evidence: no caller")
	}
	rid, client := custos.RequestFrom(ctx)
	sum := alertHash(section)
	idx, err := log.Append(ctx, &custos.AuditEntry{
		Time:      now.UTC(),
		Actor:     custos.Actor{Kind: p.Kind, ID: p.ID},
		Action:    custos.ActionAlertRead,
		Resource:  custos.Resource{Type: "alert", ID: alert.ID},
		Decision:  custos.OverallAllow,
		RequestID: rid,
		Client:    client,
		Detail:    map[string]string{DetailBundle: strconv.Itoa(Version), DetailAlertSHA256: hex.EncodeToString(sum[:])},
	})
	if err != nil {
		return nil, err
	}
	indices := append(slices.Clone(alert.Evidence), idx)
	entries, cp, err := readAll(ctx, log, indices)
	if err != nil {
		return nil, err
	}
	n := len(entries) - 1
	return &Bundle{Format: Format, Version: Version, Alert: section, Export: entries[n], Entries: entries[:n],
		Checkpoint: cp, VerifierKey: strings.TrimSpace(verifierKey) + "\n"}, nil
}

// Collect reads alert's evidence entries with proofs against one signed
// checkpoint, without an export entry (Alert is nil, Export zero): the
// console shows and checks evidence this way without exporting it.
func Collect(ctx context.Context, log Log, verifierKey string, alert *custos.Alert) (*Bundle, error) {
	entries, cp, err := readAll(ctx, log, alert.Evidence)
	if err != nil {
		return nil, err
	}
	return &Bundle{Format: Format, Version: Version, Entries: entries, Checkpoint: cp,
		VerifierKey: strings.TrimSpace(verifierKey) + "\n"}, nil
}

// readAll reads entries with proofs. If they came under different
// checkpoints (the log published one mid-way) it reads again, so all
// proofs are against the one checkpoint returned.
func readAll(ctx context.Context, log Log, indices []uint64) ([]Entry, string, error) {
	entries := make([]Entry, 0, len(indices))
	for attempt := 0; attempt <= maxBuildAttempts; attempt++ {
		entries = entries[:0]
		cp, same := "", true
		for _, idx := range indices {
			leaf, proof, c, err := log.Entry(ctx, idx)
			if err != nil {
				return nil, "", err
			}
			if cp != "" && string(c) != cp {
				same = false
			}
			cp = string(c)
			entries = append(entries, Entry{Index: idx, Leaf: leaf, Proof: proof})
		}
		if same {
			return entries, cp, nil
		}
	}
	return nil, "", custos.Errorf(custos.EUNAVAILABLE, "evidence: the log kept moving; try again")
}

func alertSection(a *custos.Alert) Alert {
	ev := a.Evidence
	if ev == nil {
		ev = []uint64{}
	}
	return Alert{ID: a.ID, Employee: a.Employee, Team: a.Team, Detector: a.Detector, Severity: a.Severity,
		Score: a.Score, Explanation: a.Explanation, Evidence: ev, Sellers: a.Sellers,
		FirstSeen: a.FirstSeen.UTC(), LastSeen: a.LastSeen.UTC()}
}

func marshalAlert(a Alert) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(a); err != nil {
		return nil, custos.Errorf(custos.EINVALID, "evidence: alert does not encode")
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// alertHash hashes the compact form of the alert section: the file holds
// it indented, and the canonical-form check covers its whitespace.
func alertHash(section []byte) [sha256.Size]byte {
	var buf bytes.Buffer
	if json.Compact(&buf, section) != nil {
		return sha256.Sum256(section)
	}
	return sha256.Sum256(buf.Bytes())
}

// Marshal returns the canonical file bytes of b: indented JSON without
// HTML escaping, ending in a newline. Verify accepts exactly these bytes.
func (b *Bundle) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(b); err != nil {
		return nil, custos.Errorf(custos.EINTERNAL, "evidence: bundle does not encode")
	}
	return buf.Bytes(), nil
}

// fail is a verification failure naming the part of the bundle at fault
// in Field (e.g. "entries[2].proof", "checkpoint", "alert").
func fail(part, format string, args ...any) error {
	return &custos.Error{Code: custos.EINVALID, Field: part, Message: part + ": " + fmt.Sprintf(format, args...)}
}

// Verify checks a bundle file offline with the key it embeds. That proves
// only that the file is self-consistent: use VerifyWithKey with the log's
// key obtained out of band to tie it to the real log.
func Verify(data []byte) (*Report, error) { return VerifyWithKey(data, "") }

// VerifyWithKey checks a bundle file offline. It requires, in order: the
// canonical encoding of a known format and version; a checkpoint signed by
// the embedded key and, when trustedKey is not empty, by trustedKey (which
// must be the embedded key); every entry decoding as a canonical audit
// entry; every inclusion proof leading to the checkpoint root; the alert's
// evidence list equal to the entries' indices; and an export entry on the
// alert whose alert_sha256 is the hash of the alert section. A failure is
// an *custos.Error with code EINVALID whose Field names the part at fault.
func VerifyWithKey(data []byte, trustedKey string) (*Report, error) {
	if len(data) > MaxBundleBytes {
		return nil, &custos.Error{Code: custos.ETOOLARGE, Field: "bundle", Message: fmt.Sprintf("bundle larger than %d bytes", MaxBundleBytes)}
	}
	var b Bundle
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return nil, fail("bundle", "not a JSON evidence bundle")
	}
	if dec.More() {
		return nil, fail("bundle", "trailing data")
	}
	if b.Format != Format || b.Version != Version {
		return nil, fail("format", "not a %s version %d", Format, Version)
	}
	again, err := b.Marshal()
	if err != nil || !bytes.Equal(again, data) {
		return nil, fail("bundle", "not in canonical form (the file was edited)")
	}
	return b.Check(trustedKey)
}

// Check verifies a parsed bundle; see VerifyWithKey. A bundle from Collect
// (no export entry) checks everything but the alert commitment, and its
// Report has a zero Alert.
func (b *Bundle) Check(trustedKey string) (*Report, error) {
	v, err := note.NewVerifier(strings.TrimSpace(b.VerifierKey))
	if err != nil {
		return nil, fail("verifier_key", "not a note verifier key")
	}
	rep := &Report{}
	if k := strings.TrimSpace(trustedKey); k != "" {
		tv, err := note.NewVerifier(k)
		if err != nil {
			return nil, fail("key", "the key given is not a note verifier key")
		}
		if k != strings.TrimSpace(b.VerifierKey) {
			return nil, fail("verifier_key", "the embedded key is not the key given")
		}
		if _, err := note.Open([]byte(b.Checkpoint), note.VerifierList(tv)); err != nil {
			return nil, fail("checkpoint", "signature does not verify with the key given")
		}
		rep.TrustedKeyUsed = true
	}
	n, err := note.Open([]byte(b.Checkpoint), note.VerifierList(v))
	if err != nil {
		return nil, fail("checkpoint", "signature does not verify")
	}
	origin, size, root, err := parseCheckpoint(n.Text)
	if err != nil {
		return nil, fail("checkpoint", "%s", custos.ErrorMessage(err))
	}
	if origin != v.Name() {
		return nil, fail("checkpoint", "origin is not the key's name")
	}
	rep.Origin, rep.TreeSize, rep.RootHash = origin, size, base64.StdEncoding.EncodeToString(root[:])

	check := func(part string, e Entry) (*custos.AuditEntry, error) {
		ae, err := audit.Decode(e.Leaf)
		if err != nil {
			return nil, fail(part+".leaf", "not a canonical audit entry")
		}
		if e.Index >= size {
			return nil, fail(part+".index", "beyond the checkpoint's tree size")
		}
		proof := make(tlog.RecordProof, len(e.Proof))
		for i, h := range e.Proof {
			if len(h) != tlog.HashSize {
				return nil, fail(part+".proof", "hash %d is not %d bytes", i, tlog.HashSize)
			}
			copy(proof[i][:], h)
		}
		if err := tlog.CheckRecord(proof, int64(size), root, int64(e.Index), tlog.RecordHash(e.Leaf)); err != nil {
			return nil, fail(part+".proof", "inclusion proof does not lead to the checkpoint root")
		}
		return ae, nil
	}
	for i, e := range b.Entries {
		if _, err := check(fmt.Sprintf("entries[%d]", i), e); err != nil {
			return nil, err
		}
	}
	rep.Entries = len(b.Entries)
	if b.Alert == nil {
		return rep, nil
	}

	var a Alert
	dec := json.NewDecoder(bytes.NewReader(b.Alert))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return nil, fail("alert", "malformed")
	}
	if len(a.Evidence) != len(b.Entries) {
		return nil, fail("alert.evidence", "lists %d entries, the bundle holds %d", len(a.Evidence), len(b.Entries))
	}
	for i, idx := range a.Evidence {
		if b.Entries[i].Index != idx {
			return nil, fail(fmt.Sprintf("entries[%d].index", i), "is not the alert's evidence entry %d", i)
		}
	}
	ex, err := check("export", b.Export)
	if err != nil {
		return nil, err
	}
	if ex.Action != custos.ActionAlertRead || ex.Resource.Type != "alert" || ex.Resource.ID != a.ID || ex.Detail[DetailBundle] != strconv.Itoa(Version) {
		return nil, fail("export", "is not an export of this alert")
	}
	sum := alertHash(b.Alert)
	want, err := hex.DecodeString(ex.Detail[DetailAlertSHA256])
	if err != nil || !bytes.Equal(want, sum[:]) {
		return nil, fail("alert", "does not match the hash the log recorded at export")
	}
	rep.Alert, rep.ExportIndex, rep.ExportedBy, rep.ExportedAt = a, b.Export.Index, ex.Actor.ID, ex.Time
	return rep, nil
}

// parseCheckpoint parses a C2SP checkpoint body: origin, decimal size and
// base64 root on three lines; extension lines are ignored.
func parseCheckpoint(text string) (origin string, size uint64, root tlog.Hash, err error) {
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 || lines[0] == "" {
		return "", 0, root, errors.New("malformed checkpoint")
	}
	size, err = strconv.ParseUint(lines[1], 10, 63)
	if err != nil || strconv.FormatUint(size, 10) != lines[1] {
		return "", 0, root, custos.Errorf(custos.EINVALID, "malformed checkpoint size")
	}
	h, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(h) != tlog.HashSize {
		return "", 0, root, custos.Errorf(custos.EINVALID, "malformed checkpoint root")
	}
	copy(root[:], h)
	return lines[0], size, root, nil
}
