package tape

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Door URLs are signed like S3's presigned ones: an HMAC-SHA256, under the
// secret shared by the endpoint and the tape system, of the method, the
// tape path and the expiry. Its holder may do that one thing to that one
// file until then, without the secret (dCache's macaroons play this role).

func signature(secret, method, tapePath string, expires int64) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(method + "\n" + tapePath + "\n" + strconv.FormatInt(expires, 10)))
	return hex.EncodeToString(m.Sum(nil))
}

// SignedQuery is the query string that lets method on tapePath until expires.
func SignedQuery(secret, method, tapePath string, expires time.Time) string {
	q := url.Values{}
	q.Set("expires", strconv.FormatInt(expires.Unix(), 10))
	q.Set("signature", signature(secret, method, tapePath, expires.Unix()))
	return q.Encode()
}

// VerifyQuery reports whether q signs method on tapePath and has not
// expired. HEAD is allowed wherever GET is.
func VerifyQuery(secret, method, tapePath string, q url.Values, now time.Time) bool {
	exp, err := strconv.ParseInt(q.Get("expires"), 10, 64)
	if err != nil || now.Unix() > exp {
		return false
	}
	if method == http.MethodHead {
		method = http.MethodGet
	}
	want := signature(secret, method, tapePath, exp)
	return hmac.Equal([]byte(want), []byte(q.Get("signature")))
}
