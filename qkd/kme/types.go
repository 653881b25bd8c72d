package kme

// Status is the answer to GET /{slave_SAE_ID}/status (ETSI GS QKD 014
// §6.1). Key sizes are in bits.
type Status struct {
	SourceKMEID      string `json:"source_KME_ID"`
	TargetKMEID      string `json:"target_KME_ID"`
	MasterSAEID      string `json:"master_SAE_ID"`
	SlaveSAEID       string `json:"slave_SAE_ID"`
	KeySize          int    `json:"key_size"`
	StoredKeyCount   int    `json:"stored_key_count"`
	MaxKeyCount      int    `json:"max_key_count"`
	MaxKeyPerRequest int    `json:"max_key_per_request"`
	MaxKeySize       int    `json:"max_key_size"`
	MinKeySize       int    `json:"min_key_size"`
	MaxSAEIDCount    int    `json:"max_SAE_ID_count"`
	StatusExtension  any    `json:"status_extension,omitempty"`
}

// KeyRequest is the body of POST enc_keys (§6.2). Nil Number and Size take
// the KME's defaults (1 key of key_size bits).
type KeyRequest struct {
	Number                *int             `json:"number,omitempty"`
	Size                  *int             `json:"size,omitempty"`
	AdditionalSlaveSAEIDs []string         `json:"additional_slave_SAE_IDs,omitempty"`
	ExtensionMandatory    []map[string]any `json:"extension_mandatory,omitempty"`
	ExtensionOptional     []map[string]any `json:"extension_optional,omitempty"`
}

// Key is one delivered key; Key is base64 in JSON.
type Key struct {
	KeyID          string `json:"key_ID"`
	KeyIDExtension any    `json:"key_ID_extension,omitempty"`
	Key            []byte `json:"key"`
	KeyExtension   any    `json:"key_extension,omitempty"`
}

// KeyContainer is the answer to enc_keys and dec_keys (§6.3).
type KeyContainer struct {
	Keys                  []Key `json:"keys"`
	KeyContainerExtension any   `json:"key_container_extension,omitempty"`
}

// KeyID names one key in a dec_keys request.
type KeyID struct {
	KeyID          string `json:"key_ID"`
	KeyIDExtension any    `json:"key_ID_extension,omitempty"`
}

// KeyIDs is the body of POST dec_keys (§6.4).
type KeyIDs struct {
	KeyIDs          []KeyID `json:"key_IDs"`
	KeyIDsExtension any     `json:"key_IDs_extension,omitempty"`
}
