package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// ErrNotFound is returned by the in-process read API when a repository, tag
// or manifest does not exist.
var ErrNotFound = errors.New("not found")

// Error codes of the OCI distribution specification (plus the
// distribution-defined ones drydock also emits).
const (
	codeBlobUnknown        = "BLOB_UNKNOWN"
	codeBlobUploadInvalid  = "BLOB_UPLOAD_INVALID"
	codeBlobUploadUnknown  = "BLOB_UPLOAD_UNKNOWN"
	codeDigestInvalid      = "DIGEST_INVALID"
	codeManifestBlobUnkown = "MANIFEST_BLOB_UNKNOWN"
	codeManifestInvalid    = "MANIFEST_INVALID"
	codeManifestUnknown    = "MANIFEST_UNKNOWN"
	codeNameInvalid        = "NAME_INVALID"
	codeNameUnknown        = "NAME_UNKNOWN"
	codeSizeInvalid        = "SIZE_INVALID"
	codeUnsupported        = "UNSUPPORTED"
	codeRangeInvalid       = "RANGE_INVALID"
	codeTagInvalid         = "TAG_INVALID"
	codePaginationInvalid  = "PAGINATION_NUMBER_INVALID"
	codeUnknown            = "UNKNOWN"
	codeUnavailable        = "UNAVAILABLE"
)

// apiError is an error answered to the client with a status and a spec code.
// Handlers return it (or any other error, answered as 500) and one place,
// writeError, renders it.
type apiError struct {
	status  int
	code    string
	message string
	detail  any
	header  http.Header // extra response headers (e.g. Range on 416)
}

func (e *apiError) Error() string {
	if e.detail != nil {
		return fmt.Sprintf("%s: %s (%v)", e.code, e.message, e.detail)
	}
	return e.code + ": " + e.message
}

func newAPIError(status int, code, message string, detail any) *apiError {
	return &apiError{status: status, code: code, message: message, detail: detail}
}

func errBlobUnknown(dig string) error {
	return newAPIError(http.StatusNotFound, codeBlobUnknown, "blob unknown to registry", map[string]string{"digest": dig})
}

func errUploadUnknown(id string) error {
	return newAPIError(http.StatusNotFound, codeBlobUploadUnknown, "blob upload unknown to registry", map[string]string{"uuid": id})
}

func errManifestUnknown(ref string) error {
	return newAPIError(http.StatusNotFound, codeManifestUnknown, "manifest unknown", map[string]string{"reference": ref})
}

func errNameUnknown(name string) error {
	return newAPIError(http.StatusNotFound, codeNameUnknown, "repository name not known to registry", map[string]string{"name": name})
}

func errDigestInvalid(detail any) error {
	return newAPIError(http.StatusBadRequest, codeDigestInvalid, "provided digest did not match uploaded content", detail)
}

func errManifestInvalid(detail any) error {
	return newAPIError(http.StatusBadRequest, codeManifestInvalid, "manifest invalid", detail)
}

func errUnsupported(detail any) error {
	return newAPIError(http.StatusMethodNotAllowed, codeUnsupported, "the operation is unsupported", detail)
}

type errorBody struct {
	Errors []errorEntry `json:"errors"`
}

type errorEntry struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// writeError answers err to the client: apiErrors with their status and code,
// anything else as a logged 500 that does not leak internals.
func (r *Registry) writeError(w http.ResponseWriter, req *http.Request, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		r.log.ErrorContext(req.Context(), "registry request failed",
			"method", req.Method, "path", req.URL.Path, "err", err)
		ae = newAPIError(http.StatusInternalServerError, codeUnknown, "internal server error", nil)
	}
	for k, vs := range ae.header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	body, _ := json.Marshal(errorBody{Errors: []errorEntry{{Code: ae.code, Message: ae.message, Detail: ae.detail}}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(ae.status)
	if req.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}
