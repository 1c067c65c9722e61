package compress

import "strings"

// Compressible reports whether a response of this Content-Type is worth
// compressing: text and structured text, and the few binary formats that
// are stored uncompressed. Media, archives, woff fonts and opaque bytes
// are already compressed or unknown; an empty type is unknown.
func Compressible(contentType string) bool {
	mt := contentType
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = mt[:i]
	}
	mt = trimOWS(mt)
	slash := strings.IndexByte(mt, '/')
	if slash <= 0 || slash == len(mt)-1 {
		return false
	}
	major, minor := mt[:slash], mt[slash+1:]
	if !isToken(major) || !isToken(minor) {
		return false // not a media type
	}
	switch {
	case equalFold(major, "text"):
		return true
	case equalFold(major, "application"):
		for _, s := range compressibleApplication {
			if equalFold(minor, s) {
				return true
			}
		}
		return hasSuffixFold(minor, "+json") || hasSuffixFold(minor, "+xml") || hasSuffixFold(minor, "+yaml")
	case equalFold(major, "image"):
		return equalFold(minor, "svg+xml") || equalFold(minor, "bmp") || equalFold(minor, "x-ms-bmp") ||
			equalFold(minor, "x-icon") || equalFold(minor, "vnd.microsoft.icon")
	case equalFold(major, "font"):
		return equalFold(minor, "ttf") || equalFold(minor, "otf") || equalFold(minor, "collection")
	}
	return false
}

// compressibleApplication are the application/* subtypes compressed
// besides the +json, +xml and +yaml suffixes. Lower case.
var compressibleApplication = []string{
	"json", "x-ndjson", "ndjson", "jsonl", "json-seq",
	"javascript", "x-javascript", "ecmascript",
	"xml", "xml-dtd",
	"yaml", "x-yaml", "toml",
	"graphql",
	"x-www-form-urlencoded",
	"wasm",
	"rtf", "x-sh", "x-csh", "x-tex", "postscript",
	"vnd.ms-fontobject", "x-font-ttf", "x-font-otf", "x-font-truetype", "x-font-opentype",
}

func hasSuffixFold(s, lowerSuffix string) bool {
	return len(s) > len(lowerSuffix) && equalFold(s[len(s)-len(lowerSuffix):], lowerSuffix)
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return s != ""
}
