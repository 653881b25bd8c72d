package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
)

// decodeStrict reads body as exactly one JSON value into v. Unknown
// fields, an empty body, malformed JSON and anything but white space after
// the value are a bad request (errBadRequest, answered 400); a body over
// the route's size limit keeps its *http.MaxBytesError (answered 413). It
// is the one decoder of JSON request bodies, clear or sealed.
func decodeStrict(body io.Reader, v any) error {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if tooLarge(err) {
			return err
		}
		return badRequest("malformed JSON body: %v", err)
	}
	switch _, err := dec.Token(); {
	case errors.Is(err, io.EOF):
		return nil
	case tooLarge(err):
		return err
	}
	return badRequest("trailing data after the JSON body")
}

func tooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}
