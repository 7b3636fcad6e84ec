package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Sessions. Every browser gets one (GET /console/api/session creates it),
// for its CSRF token; with authentication on, signing in gives it a
// Kinesis client that signs with the principal's key. The key's secret
// lives only inside that client's credentials provider, in this process's
// memory, until the session ends (logout, idle expiry, Close).

const (
	// cookieName is the session cookie.
	cookieName = "shoal_console"
	// cookiePath scopes the cookie to the console.
	cookiePath = "/console/"
	// csrfHeader carries the CSRF token on every POST.
	csrfHeader = "X-Shoal-CSRF"
	// maxSessions bounds the sessions kept; the least recently used goes
	// first.
	maxSessions = 10000
)

// session is one browser's session. Its fields are guarded by the store's
// mu, except id and csrf, which never change.
type session struct {
	id   string
	csrf string
	used time.Time // last request

	// Signed in (with authentication on): the principal's client.
	client      *sdkClient
	accessKeyID string
	account     string
}

// sessionStore holds the sessions by id.
type sessionStore struct {
	idle time.Duration
	mu   sync.Mutex // guards m and the sessions' mutable fields
	m    map[string]*session
}

func newSessionStore(idle time.Duration) *sessionStore {
	return &sessionStore{idle: idle, m: make(map[string]*session)}
}

// randomToken returns 32 random bytes in base64url.
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// sessionView is what a request sees of its session: a copy taken under
// the store's lock.
type sessionView struct {
	id          string
	csrf        string
	client      *sdkClient // nil unless signed in
	accessKeyID string
	account     string
}

func (s *session) view() *sessionView {
	return &sessionView{id: s.id, csrf: s.csrf, client: s.client, accessKeyID: s.accessKeyID, account: s.account}
}

// get returns the live session of the request's cookie, marking it used,
// or nil.
func (st *sessionStore) get(r *http.Request, now time.Time) *sessionView {
	ck, err := r.Cookie(cookieName)
	if err != nil || ck.Value == "" {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.m[ck.Value]
	if s == nil {
		return nil
	}
	if now.Sub(s.used) > st.idle {
		st.dropLocked(s)
		return nil
	}
	s.used = now
	return s.view()
}

// create starts a session (signed out) and returns it.
func (st *sessionStore) create(now time.Time) *sessionView {
	s := &session{id: randomToken(), csrf: randomToken(), used: now}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.addLocked(s)
	return s.view()
}

func (st *sessionStore) addLocked(s *session) {
	if len(st.m) >= maxSessions {
		var oldest *session
		for _, o := range st.m {
			if oldest == nil || o.used.Before(oldest.used) {
				oldest = o
			}
		}
		st.dropLocked(oldest)
	}
	st.m[s.id] = s
}

// signIn replaces the session id (so that an id known before signing in is
// worthless after) with a session of the same CSRF token that acts with
// client, and returns it. It fails (nil) when the session is gone.
func (st *sessionStore) signIn(id string, client *sdkClient, accessKeyID, account string, now time.Time) *sessionView {
	st.mu.Lock()
	defer st.mu.Unlock()
	old := st.m[id]
	if old == nil {
		return nil
	}
	st.dropLocked(old)
	s := &session{id: randomToken(), csrf: old.csrf, used: now, client: client, accessKeyID: accessKeyID, account: account}
	st.addLocked(s)
	return s.view()
}

// signOut forgets the session's client and credentials.
func (st *sessionStore) signOut(id string) *sessionView {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.m[id]
	if s == nil {
		return nil
	}
	if s.client != nil {
		s.client.close()
	}
	s.client, s.accessKeyID, s.account = nil, "", ""
	return s.view()
}

func (st *sessionStore) dropLocked(s *session) {
	if s.client != nil {
		s.client.close()
		s.client = nil
	}
	delete(st.m, s.id)
}

// expire drops the sessions idle for longer than the idle timeout and
// returns how many.
func (st *sessionStore) expire(now time.Time) int {
	st.mu.Lock()
	defer st.mu.Unlock()
	n := 0
	for _, s := range st.m {
		if now.Sub(s.used) > st.idle {
			st.dropLocked(s)
			n++
		}
	}
	return n
}

// clear drops every session.
func (st *sessionStore) clear() {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, s := range st.m {
		st.dropLocked(s)
	}
}

// setCookie sends the session's cookie.
func setCookie(w http.ResponseWriter, r *http.Request, id string) {
	http.SetCookie(w, &http.Cookie{
		Name:     cookieName,
		Value:    id,
		Path:     cookiePath,
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
}

// csrfOK reports whether a state-changing request may proceed: it carries
// its session's CSRF token (compared in constant time) and, when the
// browser sent an Origin, that is the console's own.
func csrfOK(r *http.Request, s *sessionView) bool {
	if s == nil {
		return false
	}
	tok := r.Header.Get(csrfHeader)
	if tok == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(s.csrf)) != 1 {
		return false
	}
	if origin := r.Header.Get("Origin"); origin != "" && !sameOrigin(r, origin) {
		return false
	}
	return true
}

// sameOrigin reports whether origin (a browser's Origin header) names the
// host and port the request was sent to. The scheme is not compared: behind
// a TLS-terminating proxy the console sees http where the browser says
// https (a port left out is the origin's scheme's default on both sides).
func sameOrigin(r *http.Request, origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.Path != "" || u.User != nil {
		return false
	}
	def := "80"
	if u.Scheme == "https" {
		def = "443"
	}
	return hostPort(u.Host, def) == hostPort(r.Host, def)
}

// hostPort normalises host[:port] to lower-case host:port.
func hostPort(h, defaultPort string) string {
	if host, port, err := net.SplitHostPort(h); err == nil {
		return strings.ToLower(host) + ":" + port
	}
	return strings.ToLower(strings.Trim(h, "[]")) + ":" + defaultPort
}
