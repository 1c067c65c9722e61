package wasm

// Values of the proxy-wasm ABI 0.2.1 enumerations (spec "Types" section).

// status is proxy_status_t, the result of every proxy_* host function.
type status = uint32

const (
	statusOK                   status = 0
	statusNotFound             status = 1
	statusBadArgument          status = 2
	statusSerializationFailure status = 3
	statusParseFailure         status = 4
	statusInvalidMemoryAccess  status = 6
	statusEmpty                status = 7
	statusCASMismatch          status = 8
	statusInternalFailure      status = 10
	statusUnimplemented        status = 12
)

// proxy_action_t, returned by the stream callbacks.
const (
	actionContinue = 0
	actionPause    = 1
)

// proxy_map_type_t.
const (
	mapRequestHeaders          = 0
	mapRequestTrailers         = 1
	mapResponseHeaders         = 2
	mapResponseTrailers        = 3
	mapGRPCInitialMetadata     = 4
	mapGRPCTrailingMetadata    = 5
	mapHTTPCallResponseHeaders = 6
	mapHTTPCallResponseTrailer = 7
)

// proxy_buffer_type_t.
const (
	bufferRequestBody         = 0
	bufferResponseBody        = 1
	bufferDownstreamData      = 2
	bufferUpstreamData        = 3
	bufferHTTPCallResponse    = 4
	bufferGRPCReceive         = 5
	bufferVMConfiguration     = 6
	bufferPluginConfiguration = 7
	bufferForeignArguments    = 8
)

// proxy_stream_type_t.
const (
	streamRequest  = 0
	streamResponse = 1
)

// proxy_log_level_t.
const (
	logTrace    = 0
	logDebug    = 1
	logInfo     = 2
	logWarn     = 3
	logError    = 4
	logCritical = 5
)

// ABI version exports, in order of preference.
const (
	abiVersion021 = "proxy_abi_version_0_2_1"
	abiVersion020 = "proxy_abi_version_0_2_0"
	abiVersion010 = "proxy_abi_version_0_1_0"
)
