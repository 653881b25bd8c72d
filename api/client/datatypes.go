package client

// Wire types of the shared-data endpoints.

// ShareUpload is the body of POST /v1/data/{id}/shares/{i}: one segment
// of share i.
type ShareUpload struct {
	Shares    int    `json:"shares"`
	Threshold int    `json:"threshold"`
	Scheme    string `json:"scheme"`
	Segment   int    `json:"segment"`
	Segments  int    `json:"segments"`
	ShareSize int64  `json:"share_size"`
	// ShareHash is the share's own hash (hex).
	ShareHash   string   `json:"share_hash"`
	Description string   `json:"description,omitempty"`
	Digest      []byte   `json:"digest,omitempty"`
	Readers     []string `json:"readers,omitempty"`
	Bytes       []byte   `json:"bytes"`
}

// DataItem describes one group's share of a data item.
type DataItem struct {
	DataID      string   `json:"data_id"`
	Group       int      `json:"group"`
	Index       int      `json:"index"`
	Shares      int      `json:"shares"`
	Threshold   int      `json:"threshold"`
	Scheme      string   `json:"scheme"`
	Segments    int      `json:"segments"`
	ShareSize   int64    `json:"share_size"`
	ShareHash   string   `json:"share_hash"`
	Uploader    string   `json:"uploader,omitempty"`
	Description string   `json:"description,omitempty"`
	Digest      []byte   `json:"digest,omitempty"`
	Readers     []string `json:"readers,omitempty"`
	Height      uint64   `json:"height"`
}

// ShareDownload answers GET /v1/data/{id}/shares/{i}: the share's
// segments as transactions with inclusion proofs, and the group's head.
type ShareDownload struct {
	Item     DataItem     `json:"item"`
	Segments []TxResponse `json:"segments"`
	Head     Head         `json:"head"`
}

// DataListing is one item in GET /v1/data.
type DataListing struct {
	DataItem
	// Groups holding a share of the item.
	Groups []int `json:"groups"`
}

// DataList answers GET /v1/data.
type DataList struct {
	Items []DataListing `json:"items"`
	// Unreachable lists groups that did not answer.
	Unreachable []int `json:"unreachable,omitempty"`
}
