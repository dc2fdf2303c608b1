package azurehealth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/config"
)

// tokenSource fetches and caches an access token with the client-credentials
// grant, and fetches a new one RefreshBefore its expiry.
type tokenSource struct {
	tokenURL      string
	clientID      string
	secret        config.Secret
	scope         string
	refreshBefore time.Duration
	client        *http.Client
	clock         clock.Clock

	mu      sync.Mutex
	token   string
	expires time.Time
	fetches int
}

// tokenResponse is the token endpoint's answer. expires_in is a number on
// the v2.0 endpoint and a string on the older one; both are accepted.
type tokenResponse struct {
	AccessToken string          `json:"access_token"`
	TokenType   string          `json:"token_type"`
	ExpiresIn   json.RawMessage `json:"expires_in"`
	Error       string          `json:"error"`
	Description string          `json:"error_description"`
}

// Token returns a valid access token, fetching a new one when there is none
// or the cached one expires within refreshBefore.
func (t *tokenSource) Token(ctx context.Context) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.token != "" && t.clock.Now().Before(t.expires.Add(-t.refreshBefore)) {
		return t.token, nil
	}
	return t.fetch(ctx)
}

// Invalidate drops the cached token, so the next Token fetches a new one
// (after the API refused it with 401).
func (t *tokenSource) Invalidate() {
	t.mu.Lock()
	t.token = ""
	t.mu.Unlock()
}

func (t *tokenSource) fetch(ctx context.Context) (string, error) {
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {t.clientID},
		"client_secret": {t.secret.Reveal()},
		"scope":         {t.scope},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("build token request for %s: %w", t.tokenURL, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	asked := t.clock.Now()
	resp, err := t.client.Do(req)
	if err != nil {
		return "", &httpError{op: "fetch token from " + t.tokenURL, err: scrub(err, t.secret)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", &httpError{op: "read token response", status: resp.StatusCode, err: err}
	}
	var tr tokenResponse
	jsonErr := json.Unmarshal(body, &tr)
	if resp.StatusCode != http.StatusOK {
		reason := http.StatusText(resp.StatusCode)
		if jsonErr == nil && tr.Error != "" {
			// error_description names the problem (bad secret, unknown
			// client) without echoing the secret.
			reason = tr.Error + ": " + firstLine(tr.Description)
		}
		return "", &httpError{op: "fetch token from " + t.tokenURL, status: resp.StatusCode,
			retryAfter: retryAfter(resp.Header, t.clock.Now()), err: fmt.Errorf("%s", reason)}
	}
	if jsonErr != nil {
		return "", fmt.Errorf("decode token response: %w", jsonErr)
	}
	if tr.AccessToken == "" {
		return "", fmt.Errorf("token response has no access_token")
	}
	secs, err := expiresIn(tr.ExpiresIn)
	if err != nil {
		return "", fmt.Errorf("token response: %w", err)
	}
	t.token = tr.AccessToken
	t.expires = asked.Add(time.Duration(secs) * time.Second)
	t.fetches++
	return t.token, nil
}

func expiresIn(raw json.RawMessage) (int64, error) {
	s := strings.Trim(string(raw), `"`)
	if s == "" {
		return 0, fmt.Errorf("expires_in is missing")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("expires_in %q is not a positive number of seconds", s)
	}
	return n, nil
}

// scrub removes the secret from an error's text: a transport error quotes
// the URL, never the form body, but a proxy's error page might not be so
// careful.
func scrub(err error, secret config.Secret) error {
	if secret.Set() && strings.Contains(err.Error(), secret.Reveal()) {
		return fmt.Errorf("%s", strings.ReplaceAll(err.Error(), secret.Reveal(), secret.String()))
	}
	return err
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	s = strings.TrimSpace(strings.TrimRight(s, "\r"))
	if r := []rune(s); len(r) > 300 {
		s = string(r[:300]) + "…"
	}
	return s
}

// NewTokenSource returns a client-credentials token source for other users
// of the same service principal (the Azure remedy actuator): tokens come
// from loginEndpoint/tenantID/oauth2/v2.0/token for scope (e.g.
// "https://management.azure.com/.default"), are cached and fetched again
// DefaultRefreshBefore their expiry. Its errors never contain the secret.
// A nil client or clock means a 30s-timeout client and the real clock.
func NewTokenSource(loginEndpoint, tenantID, clientID string, secret config.Secret, scope string,
	client *http.Client, clk clock.Clock) func(ctx context.Context) (string, error) {
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	if clk == nil {
		clk = clock.Real{}
	}
	t := &tokenSource{
		tokenURL: strings.TrimRight(loginEndpoint, "/") + "/" + url.PathEscape(tenantID) + "/oauth2/v2.0/token",
		clientID: clientID, secret: secret, scope: scope,
		refreshBefore: DefaultRefreshBefore, client: client, clock: clk,
	}
	return t.Token
}
