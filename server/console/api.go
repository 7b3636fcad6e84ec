package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go"
)

// call is one API request on its way through a handler.
type call struct {
	w   http.ResponseWriter
	r   *http.Request
	ctx context.Context
	// sess is the request's session, nil when it has none.
	sess *sessionView
	// client acts for the caller: the signed-in principal's, or the
	// anonymous one without authentication. Nil for the open routes.
	client  *sdkClient
	account string // the caller's account
	params  map[string]string
}

// param is a path parameter, unescaped.
func (cl *call) param(name string) string { return cl.params[name] }

// query is a query parameter.
func (cl *call) query(name string) string { return cl.r.URL.Query().Get(name) }

// route is one endpoint of API.md.
type route struct {
	method  string
	pattern []string // path segments after /console/api/; "{x}" is a parameter
	// open routes work signed out (the session's own).
	open bool
	// fn answers the call: a value to write as JSON with 200, or an
	// error. A raw route writes its own answer once it started one and
	// then returns (nil, nil).
	fn func(*call) (any, error)
}

func (c *Console) apiRoutes() []route {
	r := func(method, pattern string, fn func(*call) (any, error)) route {
		return route{method: method, pattern: strings.Split(pattern, "/"), fn: fn}
	}
	open := func(rt route) route { rt.open = true; return rt }
	return []route{
		open(r(http.MethodGet, "session", c.getSession)),
		open(r(http.MethodPost, "login", c.login)),
		open(r(http.MethodPost, "logout", c.logout)),
		r(http.MethodGet, "streams", c.listStreams),
		r(http.MethodPost, "streams", c.createStream),
		r(http.MethodGet, "streams/{name}", c.getStream),
		r(http.MethodPost, "streams/{name}/delete", c.deleteStream),
		r(http.MethodPost, "streams/{name}/retention", c.setRetention),
		r(http.MethodPost, "streams/{name}/mode", c.setMode),
		r(http.MethodPost, "streams/{name}/shard-count", c.setShardCount),
		r(http.MethodPost, "streams/{name}/tags", c.changeTags),
		r(http.MethodPost, "streams/{name}/encryption", c.setEncryption),
		r(http.MethodPost, "streams/{name}/monitoring", c.setMonitoring),
		r(http.MethodGet, "streams/{name}/shards", c.listShards),
		r(http.MethodPost, "streams/{name}/split", c.splitShard),
		r(http.MethodPost, "streams/{name}/merge", c.mergeShards),
		r(http.MethodGet, "streams/{name}/records", c.getRecords),
		r(http.MethodPost, "streams/{name}/records", c.putRecord),
		r(http.MethodGet, "streams/{name}/tail", c.tail),
		r(http.MethodGet, "streams/{name}/consumers", c.listConsumers),
		r(http.MethodPost, "streams/{name}/consumers", c.registerConsumer),
		r(http.MethodPost, "streams/{name}/consumers/{consumer}/delete", c.deregisterConsumer),
		r(http.MethodGet, "streams/{name}/metrics", c.metrics),
		r(http.MethodGet, "applications", c.listApplications),
		r(http.MethodGet, "applications/{app}", c.getApplication),
	}
}

// match returns the parameters of segs under pattern, or false.
func match(pattern, segs []string) (map[string]string, bool) {
	if len(pattern) != len(segs) {
		return nil, false
	}
	var params map[string]string
	for i, p := range pattern {
		if name, ok := strings.CutPrefix(p, "{"); ok {
			if segs[i] == "" {
				return nil, false
			}
			if params == nil {
				params = make(map[string]string)
			}
			params[strings.TrimSuffix(name, "}")] = segs[i]
			continue
		}
		if p != segs[i] {
			return nil, false
		}
	}
	return params, true
}

// routes returns the console's handler.
func (c *Console) routes() http.Handler {
	api := c.apiRoutes()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w.Header())
		p := r.URL.Path
		switch {
		case p == "/console":
			// Without http.Redirect's HTML body: only the page is HTML.
			w.Header().Set("Location", cookiePath)
			w.WriteHeader(http.StatusMovedPermanently)
		case strings.HasPrefix(p, "/console/api/"):
			c.serveAPI(w, r, api)
		case p == cookiePath || strings.HasPrefix(p, "/console/assets/"):
			serveAsset(w, r)
		default:
			writeJSON(w, http.StatusNotFound, errorBody{codeNotFound, "No console page at " + p + "."})
		}
	})
}

// serveAPI routes an API request, checks its session, CSRF token and
// sign-in, and runs its handler.
func (c *Console) serveAPI(w http.ResponseWriter, r *http.Request, api []route) {
	w.Header().Set("Cache-Control", "no-store")
	rest := strings.TrimPrefix(r.URL.EscapedPath(), "/console/api/")
	segs := strings.Split(rest, "/")
	for i, s := range segs {
		u, err := url.PathUnescape(s)
		if err != nil {
			writeJSON(w, http.StatusNotFound, errorBody{codeNotFound, "No console API at " + r.URL.Path + "."})
			return
		}
		segs[i] = u
	}
	var (
		rt     *route
		params map[string]string
		allow  []string
	)
	for i := range api {
		p, ok := match(api[i].pattern, segs)
		if !ok {
			continue
		}
		if api[i].method == r.Method {
			rt, params = &api[i], p
			break
		}
		allow = append(allow, api[i].method)
	}
	if rt == nil {
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeJSON(w, http.StatusMethodNotAllowed, errorBody{codeBadMethod, "Method " + r.Method + " is not allowed on " + r.URL.Path + "."})
			return
		}
		writeJSON(w, http.StatusNotFound, errorBody{codeNotFound, "No console API at " + r.URL.Path + "."})
		return
	}
	cl := &call{w: w, r: r, ctx: r.Context(), sess: c.sessions.get(r, c.now()), params: params}
	if r.Method != http.MethodGet && !csrfOK(r, cl.sess) {
		writeJSON(w, http.StatusForbidden, errorBody{codeCSRF, "The request lacks the console's CSRF token (X-Shoal-CSRF, from GET /console/api/session) or comes from another origin."})
		return
	}
	if !rt.open {
		switch {
		case !c.auth:
			cl.client, cl.account = c.anon, c.cfg.Account
		case cl.sess != nil && cl.sess.client != nil:
			cl.client, cl.account = cl.sess.client, cl.sess.account
		default:
			writeJSON(w, http.StatusUnauthorized, errorBody{codeSignedOut, "Sign in with an access key of the server's auth configuration."})
			return
		}
	}
	out, err := rt.fn(cl)
	switch {
	case err != nil:
		c.writeError(w, r, err)
	case out != nil:
		writeJSON(w, http.StatusOK, out)
	}
}

// sessionJSON is the session object of API.md.
type sessionJSON struct {
	Auth        bool   `json:"auth"`
	SignedIn    bool   `json:"signedIn"`
	AccessKeyID string `json:"accessKeyId"`
	CSRF        string `json:"csrf"`
	Region      string `json:"region"`
	Account     string `json:"account"`
	Leases      bool   `json:"leases"`
	History     bool   `json:"history"`
}

func (c *Console) sessionOf(s *sessionView) sessionJSON {
	out := sessionJSON{
		Auth: c.auth, SignedIn: !c.auth, CSRF: s.csrf, Region: c.cfg.Region, Account: c.cfg.Account,
		Leases: c.leases != nil, History: c.cfg.History != nil,
	}
	if c.auth && s.client != nil {
		out.SignedIn, out.AccessKeyID, out.Account = true, s.accessKeyID, s.account
	}
	return out
}

// getSession answers the session, starting one (and its cookie) when the
// request has none.
func (c *Console) getSession(cl *call) (any, error) {
	if cl.sess == nil {
		cl.sess = c.sessions.create(c.now())
		setCookie(cl.w, cl.r, cl.sess.id)
	}
	return c.sessionOf(cl.sess), nil
}

type loginInput struct {
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
	SessionToken    string `json:"sessionToken"`
}

// login checks the credentials with one signed ListStreams call and signs
// the session in with them (under a new session id).
func (c *Console) login(cl *call) (any, error) {
	var in loginInput
	if err := decodeBody(cl.w, cl.r, &in); err != nil {
		return nil, err
	}
	if !c.auth {
		return nil, badRequest("The server does not verify requests (it runs without --auth-config): there is nothing to sign in to.")
	}
	if in.AccessKeyID == "" || in.SecretAccessKey == "" {
		return nil, badRequest("Give an access key ID and its secret access key.")
	}
	client := c.newClient(credentials.NewStaticCredentialsProvider(in.AccessKeyID, in.SecretAccessKey, in.SessionToken), remoteAddr(cl.r))
	_, err := client.ListStreams(cl.ctx, &kinesis.ListStreamsInput{Limit: aws.Int32(1)}, func(o *kinesis.Options) { o.RetryMaxAttempts = 1 })
	var ae smithy.APIError
	if err != nil && !(errors.As(err, &ae) && ae.ErrorCode() == "AccessDeniedException") {
		client.close()
		return nil, err
	}
	account, ok := c.srv.KeyAccount(in.AccessKeyID)
	if !ok {
		account = c.cfg.Account
	}
	s := c.sessions.signIn(cl.sess.id, client, in.AccessKeyID, account, c.now())
	if s == nil {
		client.close()
		return nil, &consoleError{status: http.StatusForbidden, code: codeCSRF, message: "The session ended; load the console again."}
	}
	setCookie(cl.w, cl.r, s.id)
	return c.sessionOf(s), nil
}

// logout forgets the session's credentials.
func (c *Console) logout(cl *call) (any, error) {
	s := c.sessions.signOut(cl.sess.id)
	if s == nil {
		s = cl.sess
	}
	return c.sessionOf(s), nil
}
