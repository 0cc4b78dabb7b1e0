package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/auth"
)

// Defaults for BenchConfig.
const (
	DefaultBenchRate        = 100
	DefaultBenchDuration    = 10 * time.Second
	DefaultBenchTimeout     = 10 * time.Second
	DefaultBenchMaxInFlight = 10000
	// benchMaxLine bounds one line of a requests or tokens file.
	benchMaxLine = 1 << 20
)

// BenchRequest is one reveal the load generator sends: the employee whose
// token it carries, and the POST /v1/reveal body. A requests file holds one
// per line, as JSON; the generator cycles through them.
type BenchRequest struct {
	Employee string          `json:"employee"`
	Body     json.RawMessage `json:"body"`
}

// BenchConfig is one run of `custos bench`.
type BenchConfig struct {
	Targets     []string      // base URLs, e.g. http://127.0.0.1:8080; requests go round-robin
	Rate        float64       // requests per second, on a fixed schedule
	Duration    time.Duration // how long to send
	Requests    []BenchRequest
	Tokens      map[string]string // employee id → bearer token
	Timeout     time.Duration     // per request
	MaxInFlight int               // more outstanding than this counts as "overload", unsent
	// RunID prefixes request ids (X-Request-Id: RunID-N), so acks name
	// audit entries unambiguously.
	RunID  string
	Client *http.Client
}

// BenchAck is an acknowledged reveal: its request id and the audit index
// the server answered with.
type BenchAck struct {
	RequestID string `json:"request_id"`
	Index     uint64 `json:"audit_index"`
	Target    string `json:"target"`
}

// BenchResult is what a run measured. Latency runs from each request's
// scheduled send time, so a slow server cannot hide its queueing
// (no coordinated omission).
type BenchResult struct {
	Scheduled  int            `json:"scheduled"`
	OK         int            `json:"ok"`
	Errors     map[string]int `json:"errors"` // by HTTP status, or "transport", "overload"
	Elapsed    time.Duration  `json:"elapsed_ns"`
	Throughput float64        `json:"ok_per_second"`
	P50        time.Duration  `json:"p50_ns"`
	P99        time.Duration  `json:"p99_ns"`
	Max        time.Duration  `json:"max_ns"`
	Acks       []BenchAck     `json:"-"`
}

// RunBench sends cfg.Rate reveals per second for cfg.Duration, open loop:
// request i is sent at start + i/Rate whatever happened to the earlier
// ones, then waits for the outstanding ones (each bounded by Timeout).
func RunBench(ctx context.Context, cfg BenchConfig) (*BenchResult, error) {
	if len(cfg.Targets) == 0 || cfg.Rate <= 0 || cfg.Duration <= 0 || len(cfg.Requests) == 0 {
		return nil, custos.Errorf(custos.EINVALID, "bench needs targets, a positive rate and duration, and requests")
	}
	for _, r := range cfg.Requests {
		if _, ok := cfg.Tokens[r.Employee]; !ok {
			return nil, custos.Errorf(custos.EINVALID, "bench has no token for employee %q", r.Employee)
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultBenchTimeout
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultBenchMaxInFlight
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 0}}
	}
	if cfg.RunID == "" {
		cfg.RunID = "bench" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	n := int(cfg.Rate * cfg.Duration.Seconds())
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	res := &BenchResult{Errors: map[string]int{}}
	lat := make([]time.Duration, 0, n)
	var mu sync.Mutex
	var inflight atomic.Int64
	var wg sync.WaitGroup
	fail := func(kind string) {
		mu.Lock()
		res.Errors[kind]++
		mu.Unlock()
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			select {
			case <-ctx.Done():
				n = i
			case <-time.After(d):
			}
		}
		if ctx.Err() != nil {
			n = i
			break
		}
		if inflight.Load() >= int64(cfg.MaxInFlight) {
			fail("overload")
			continue
		}
		inflight.Add(1)
		wg.Add(1)
		go func(i int, at time.Time) {
			defer wg.Done()
			defer inflight.Add(-1)
			target := cfg.Targets[i%len(cfg.Targets)]
			r := cfg.Requests[i%len(cfg.Requests)]
			rid := cfg.RunID + "-" + strconv.Itoa(i)
			idx, status, err := benchSend(ctx, cfg, target, r, rid)
			took := time.Since(at)
			if err != nil {
				fail("transport")
				return
			}
			if status != http.StatusOK {
				fail(strconv.Itoa(status))
				return
			}
			mu.Lock()
			res.OK++
			lat = append(lat, took)
			res.Acks = append(res.Acks, BenchAck{RequestID: rid, Index: idx, Target: target})
			mu.Unlock()
		}(i, at)
	}
	wg.Wait()
	res.Scheduled = n
	res.Elapsed = time.Since(start)
	if res.Elapsed > 0 {
		res.Throughput = float64(res.OK) / res.Elapsed.Seconds()
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		res.P50 = lat[(len(lat)-1)/2]
		res.P99 = lat[(len(lat)-1)*99/100]
		res.Max = lat[len(lat)-1]
	}
	return res, nil
}

// benchSend posts one reveal and returns the audit index of a 200.
func benchSend(ctx context.Context, cfg BenchConfig, target string, r BenchRequest, rid string) (uint64, int, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", strings.TrimSuffix(target, "/")+"/v1/reveal", bytes.NewReader(r.Body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+cfg.Tokens[r.Employee])
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", rid)
	resp, err := cfg.Client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		return 0, resp.StatusCode, nil
	}
	// Only the index is read: the fields may hold revealed PII, which the
	// generator never keeps or prints.
	var out struct {
		AuditIndex *uint64 `json:"audit_index"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil || out.AuditIndex == nil {
		return 0, 0, errors.New("reveal answer without an audit index")
	}
	return *out.AuditIndex, resp.StatusCode, nil
}

// ParseBenchRequests reads a requests file: one BenchRequest per line as
// JSON; blank lines and lines starting with # are skipped.
func ParseBenchRequests(r io.Reader) ([]BenchRequest, error) {
	var out []BenchRequest
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), benchMaxLine)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		var br BenchRequest
		dec := json.NewDecoder(strings.NewReader(s))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&br); err != nil {
			return nil, &custos.Error{Code: custos.EINVALID, Message: "bench request is not valid JSON", Line: line}
		}
		if br.Employee == "" || len(br.Body) == 0 || !json.Valid(br.Body) || br.Body[0] != '{' {
			return nil, &custos.Error{Code: custos.EINVALID, Message: "bench request needs an employee and a JSON object body", Line: line}
		}
		out = append(out, br)
	}
	if err := sc.Err(); err != nil {
		return nil, custos.Errorf(custos.EINVALID, "bench requests: %v", err)
	}
	if len(out) == 0 {
		return nil, custos.Errorf(custos.EINVALID, "bench requests file holds no request")
	}
	return out, nil
}

// ParseBenchTokens reads a tokens file: "EMPLOYEE-ID TOKEN" per line.
func ParseBenchTokens(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), benchMaxLine)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		id, tok, ok := strings.Cut(s, " ")
		tok = strings.TrimSpace(tok)
		if !ok || id == "" || tok == "" || strings.ContainsAny(tok, " \t") {
			// The line may hold a secret: never echo it.
			return nil, &custos.Error{Code: custos.EINVALID, Message: "bench tokens: want EMPLOYEE-ID TOKEN", Line: line}
		}
		out[id] = tok
	}
	if err := sc.Err(); err != nil {
		return nil, custos.Errorf(custos.EINVALID, "bench tokens: %v", err)
	}
	return out, nil
}

// benchFlags is the command line of custos bench before it is loaded.
type benchFlags struct {
	targets, requests, tokens, data, acks string
	rate                                  float64
	duration, timeout, ttl                time.Duration
	maxInFlight                           int
	json                                  bool
}

const benchUsage = `usage: custos bench --target URL[,URL…] --requests FILE (--data DIR | --tokens FILE)
                    [--rate N] [--duration D] [--timeout D] [--acks FILE] [--json]

Sends reveals open loop at a fixed rate (schedule by time, not by
completion) and reports throughput, p50/p99 latency and errors by status.
--requests holds one {"employee":ID,"body":{…reveal…}} per line; tokens are
minted with DIR/token.key, or read from --tokens ("ID TOKEN" per line, 0600).
--acks writes each acknowledged reveal as {"request_id","audit_index","target"}.
`

// parseBench reads custos bench's flags into c.Bench.
func (m *Main) parseBench(c Config, args []string) error {
	f := &c.Bench
	fs := flag.NewFlagSet("custos bench", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	fs.Usage = func() { fmt.Fprint(m.Stderr, benchUsage) }
	fs.StringVar(&f.targets, "target", "", "base URL(s) of custos serve, comma-separated")
	fs.StringVar(&f.requests, "requests", "", "requests file (JSON lines)")
	fs.StringVar(&f.tokens, "tokens", "", "tokens file, ID TOKEN per line (0600)")
	fs.StringVar(&f.data, "data", "", "data directory whose token.key mints employee tokens")
	fs.StringVar(&f.acks, "acks", "", "write acknowledged reveals (request id → audit index) to this file")
	fs.Float64Var(&f.rate, "rate", DefaultBenchRate, "requests per second")
	fs.DurationVar(&f.duration, "duration", DefaultBenchDuration, "how long to send")
	fs.DurationVar(&f.timeout, "timeout", DefaultBenchTimeout, "per-request timeout")
	fs.DurationVar(&f.ttl, "ttl", time.Hour, "life of minted tokens")
	fs.IntVar(&f.maxInFlight, "max-inflight", DefaultBenchMaxInFlight, "outstanding requests beyond which one is counted as overload")
	fs.BoolVar(&f.json, "json", false, "print the result as JSON")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "text or json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return custos.Errorf(custos.EINVALID, "unexpected argument %q", fs.Arg(0))
	}
	if err := c.Validate(); err != nil {
		return err
	}
	m.Config = c
	return nil
}

// bench loads the inputs and runs the load generator.
func (m *Main) bench(ctx context.Context) error {
	f := m.Config.Bench
	cfg, err := loadBench(f)
	if err != nil {
		return err
	}
	res, err := RunBench(ctx, cfg)
	if err != nil {
		return err
	}
	if f.acks != "" {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		for _, a := range res.Acks {
			_ = enc.Encode(a)
		}
		if err := writeFileAtomic(f.acks, b.Bytes(), 0o644); err != nil {
			return fmt.Errorf("acks: %w", err)
		}
	}
	if f.json {
		enc := json.NewEncoder(m.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	return writeBenchResult(m.Stdout, res)
}

func loadBench(f benchFlags) (BenchConfig, error) {
	bad := func(format string, args ...any) (BenchConfig, error) {
		return BenchConfig{}, custos.Errorf(custos.EINVALID, format, args...)
	}
	cfg := BenchConfig{Rate: f.rate, Duration: f.duration, Timeout: f.timeout, MaxInFlight: f.maxInFlight}
	for _, t := range strings.Split(f.targets, ",") {
		if t = strings.TrimSpace(t); t == "" {
			continue
		}
		if !strings.HasPrefix(t, "http://") && !strings.HasPrefix(t, "https://") {
			return bad("--target must be http(s) URLs")
		}
		cfg.Targets = append(cfg.Targets, t)
	}
	switch {
	case len(cfg.Targets) == 0:
		return bad("bench needs --target URL")
	case f.rate <= 0 || f.duration <= 0 || f.timeout <= 0:
		return bad("--rate, --duration and --timeout must be positive")
	case f.requests == "":
		return bad("bench needs --requests FILE")
	case (f.data == "") == (f.tokens == ""):
		return bad("bench needs exactly one of --data DIR and --tokens FILE")
	}
	rf, err := os.Open(f.requests)
	if err != nil {
		return bad("requests file: %v", err)
	}
	cfg.Requests, err = ParseBenchRequests(rf)
	rf.Close()
	if err != nil {
		return BenchConfig{}, err
	}
	if f.tokens != "" {
		if err := checkSecretFile(f.tokens); err != nil {
			return BenchConfig{}, err
		}
		tf, err := os.Open(f.tokens)
		if err != nil {
			return bad("tokens file: %v", err)
		}
		cfg.Tokens, err = ParseBenchTokens(tf)
		tf.Close()
		if err != nil {
			return BenchConfig{}, err
		}
		return cfg, nil
	}
	// Mint, but never create a key: a new key would sign tokens no server
	// accepts.
	if _, err := os.Stat(filepath.Join(f.data, auth.TokenKeyFile)); err != nil {
		return bad("--data %s has no %s", f.data, auth.TokenKeyFile)
	}
	iss, err := auth.LoadOrCreateIssuer(f.data)
	if err != nil {
		return BenchConfig{}, err
	}
	cfg.Tokens = map[string]string{}
	for _, r := range cfg.Requests {
		if _, ok := cfg.Tokens[r.Employee]; ok {
			continue
		}
		tok, err := iss.Issue(custos.Principal{Kind: custos.KindEmployee, ID: r.Employee}, f.ttl)
		if err != nil {
			return BenchConfig{}, err
		}
		cfg.Tokens[r.Employee] = tok
	}
	return cfg, nil
}

func writeBenchResult(w io.Writer, r *BenchResult) error {
	var errs []string
	for k, v := range r.Errors {
		errs = append(errs, fmt.Sprintf("%s=%d", k, v))
	}
	slices.Sort(errs)
	if len(errs) == 0 {
		errs = []string{"none"}
	}
	_, err := fmt.Fprintf(w, "scheduled %d, ok %d in %s: %.1f ok/s; latency p50 %s p99 %s max %s; errors %s\n",
		r.Scheduled, r.OK, r.Elapsed.Round(time.Millisecond), r.Throughput,
		r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond), r.Max.Round(time.Microsecond), strings.Join(errs, " "))
	return err
}
