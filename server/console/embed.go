package console

import (
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// assets are the page and its files, embedded in the binary: the console
// loads nothing from elsewhere.
//
//go:embed assets
var assets embed.FS

// serveAsset answers GET /console/ with assets/index.html and GET
// /console/assets/<file> with that file. Directories are not listed.
func serveAsset(w http.ResponseWriter, r *http.Request) {
	name := "assets/index.html"
	if r.URL.Path != cookiePath {
		rest, ok := strings.CutPrefix(r.URL.Path, "/console/assets/")
		if !ok || rest == "" {
			writeJSON(w, http.StatusNotFound, errorBody{codeNotFound, "No console page at " + r.URL.Path + "."})
			return
		}
		name = path.Join("assets", path.Clean("/" + rest)[1:])
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{codeBadMethod, "Method " + r.Method + " is not allowed here."})
		return
	}
	b, err := fs.ReadFile(assets, name)
	if err != nil {
		writeJSON(w, http.StatusNotFound, errorBody{codeNotFound, "No console page at " + r.URL.Path + "."})
		return
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
}
