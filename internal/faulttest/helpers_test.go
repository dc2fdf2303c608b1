//go:build faults

package faulttest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
)

// binary is the vmtriage binary built once for the package's tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vmtriage-faulttest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "faulttest:", err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "vmtriage")
	build := exec.Command("go", "build", "-o", binary, "github.com/vmtriage/vmtriage/cmd/vmtriage")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "faulttest: build vmtriage:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a loopback TCP port nobody listens on right now.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// eventually polls cond every 50 ms until it returns nil or d passes, and
// fails the test with cond's last error then.
func eventually(t testing.TB, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// redisServer is a redis-server the test started on a spare port, with its
// own directory (so AOF files survive a restart).
type redisServer struct {
	t    testing.TB
	port int
	dir  string
	args []string
	cmd  *exec.Cmd
}

// startRedis starts redis-server with extra config args (e.g. appendonly).
// It fails, never skips, when redis-server is missing.
func startRedis(t testing.TB, extra ...string) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("fault tests need redis-server on the PATH (apt-get install redis-server): %v", err)
	}
	r := &redisServer{t: t, port: freePort(t), dir: t.TempDir()}
	r.args = append([]string{"--bind", "127.0.0.1", "--port", strconv.Itoa(r.port), "--dir", r.dir,
		"--save", "", "--logfile", filepath.Join(r.dir, "redis.log")}, extra...)
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *redisServer) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

func (r *redisServer) start() {
	r.t.Helper()
	r.cmd = exec.Command("redis-server", r.args...)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", r.port)})
	defer c.Close()
	eventually(r.t, 10*time.Second, "redis-server answers", func() error {
		// While loading the AOF, Redis answers LOADING: not ready yet.
		return c.Ping(context.Background()).Err()
	})
}

// kill stops the server at once (SIGKILL), as a crash would.
func (r *redisServer) kill() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	_ = r.cmd.Wait()
	r.cmd = nil
}

// client connects the test itself to the server.
func (r *redisServer) client(t testing.TB) redis.UniversalClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := store.Connect(ctx, r.url())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// replica is one `vmtriage serve` process.
type replica struct {
	name string
	addr string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
}

// startReplica runs `vmtriage serve` named name with env on top of a
// minimal environment, and waits until GET /readyz answers 200.
func startReplica(t testing.TB, name string, env map[string]string) *replica {
	t.Helper()
	r := &replica{name: name, addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		log: filepath.Join(t.TempDir(), name+".log"), done: make(chan struct{})}
	logf, err := os.Create(r.log)
	if err != nil {
		t.Fatal(err)
	}
	r.cmd = exec.Command(binary, "serve")
	r.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"VMTRIAGE_REPLICA=" + name, "VMTRIAGE_HTTP_ADDR=" + r.addr}
	for k, v := range env {
		r.cmd.Env = append(r.cmd.Env, k+"="+v)
	}
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start replica %s: %v", name, err)
	}
	go func() {
		_ = r.cmd.Wait()
		logf.Close()
		close(r.done)
	}()
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			t.Logf("log of replica %s (last 40 lines):\n%s", name, tail(r.log, 40))
		}
	})
	eventually(t, 30*time.Second, "replica "+name+" ready", func() error {
		select {
		case <-r.done:
			t.Fatalf("replica %s exited at start: %s", name, tail(r.log, 20))
		default:
		}
		code, err := r.ready()
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("GET /readyz: %d", code)
		}
		return err
	})
	return r
}

// ready returns the status of GET /readyz.
func (r *replica) ready() (int, error) {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + r.addr + "/readyz")
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// sigkill kills the process without warning and waits for it to be gone.
func (r *replica) sigkill() {
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.done
}

// stop asks the process to stop (SIGTERM), then kills it if it lingers.
func (r *replica) stop() {
	select {
	case <-r.done:
		return
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(15 * time.Second):
		r.sigkill()
	}
}

// postObservations sends obs as JSON lines to POST /v1/observations and
// returns nil only when the replica acknowledged them (202).
func (r *replica) postObservations(obs []model.Observation) error {
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	for i := range obs {
		if err := enc.Encode(&obs[i]); err != nil {
			return err
		}
	}
	c := http.Client{Timeout: 30 * time.Second}
	resp, err := c.Post("http://"+r.addr+"/v1/observations", "application/x-ndjson", &body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("POST /v1/observations to %s: %d %s", r.name, resp.StatusCode, bytes.TrimSpace(b))
	}
	return nil
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// slackPost is one root message (not a thread reply) the fake Slack
// accepted.
type slackPost struct {
	channel, ts string
	incidents   []string // the distinct incident ids the message names
}

// fakeSlack is a minimal Slack Web API: chat.postMessage and chat.update
// succeed and are recorded; every other method answers ok.
type fakeSlack struct {
	srv *httptest.Server

	mu      sync.Mutex
	n       int
	roots   []slackPost
	replies int
	updates int
	// Until failUntil, every call is refused, alternately with 429
	// (Retry-After: 1) and 500; refused counts them.
	failUntil time.Time
	refused   int
}

// fail makes the fake refuse every call for d from now.
func (f *fakeSlack) fail(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failUntil = time.Now().Add(d)
}

// refusedCalls counts the calls refused so far.
func (f *fakeSlack) refusedCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refused
}

var incidentRef = regexp.MustCompile(`\binc-[0-9]+\b`)

func newFakeSlack(t testing.TB) *fakeSlack {
	t.Helper()
	f := &fakeSlack{}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSlack) url() string { return f.srv.URL + "/" }

func (f *fakeSlack) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	f.mu.Lock()
	defer f.mu.Unlock()
	if time.Now().Before(f.failUntil) {
		f.refused++
		if f.refused%2 == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		} else {
			w.WriteHeader(http.StatusInternalServerError)
		}
		_, _ = w.Write([]byte(`{"ok":false,"error":"fault injected"}`))
		return
	}
	ch := r.Form.Get("channel")
	switch strings.TrimPrefix(r.URL.Path, "/") {
	case "chat.postMessage":
		f.n++
		ts := fmt.Sprintf("1796000000.%06d", f.n)
		if r.Form.Get("thread_ts") != "" {
			f.replies++
		} else {
			seen := map[string]bool{}
			var ids []string
			for _, id := range incidentRef.FindAllString(r.Form.Get("text")+r.Form.Get("blocks"), -1) {
				if !seen[id] {
					seen[id] = true
					ids = append(ids, id)
				}
			}
			f.roots = append(f.roots, slackPost{channel: ch, ts: ts, incidents: ids})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": ch, "ts": ts})
	case "chat.update":
		f.updates++
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": ch, "ts": r.Form.Get("ts")})
	default:
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true})
	}
}

// posts returns the root messages accepted so far and the counts of
// thread replies and updates.
func (f *fakeSlack) posts() (roots []slackPost, replies, updates int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]slackPost(nil), f.roots...), f.replies, f.updates
}
