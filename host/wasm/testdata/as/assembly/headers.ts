// headers.ts is the header-editing test plugin of ../../tinygo/headers written
// in AssemblyScript against @solo-io/proxy-runtime 0.1.8, the AssemblyScript
// SDK on npm, and built with the assemblyscript compiler its lockfile pins
// (0.14.9): ../build.sh runs
//
//	asc assembly/headers.ts -b headers.wasm --use abort=abort_proc_exit --optimize
//
// The SDK reads the plugin configuration in proxy_on_configure
// (RootContext.onConfigure, which checks the status of
// proxy_get_buffer_bytes and aborts through wasi_unstable.proc_exit on
// anything but Ok) and finds its root context by the plugin_root_id
// property: this module registers the same root context under the root ids
// "" and "as_headers".
//
// On request headers it logs one line at info level, then:
//   - with "x-deny": a local reply 403, header "x-denied-by: wasm", body
//     "denied by wasm", and stops the request;
//   - otherwise adds "x-wasm: as", replaces the value of "x-replace" with
//     "replaced" (only when the header is there), removes "x-remove", and
//     adds "x-config: <plugin configuration>" when the configuration is not
//     empty.
// On response headers it logs one line and adds "x-wasm-response: yes".
export * from "@solo-io/proxy-runtime/proxy";
import {
  RootContext,
  Context,
  registerRootContext,
  FilterHeadersStatusValues,
  GrpcStatusValues,
  HeaderPair,
  LogLevelValues,
  log,
  send_local_response,
  stream_context,
} from "@solo-io/proxy-runtime";

class HeadersRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new Headers(context_id, this);
  }
}

class Headers extends Context {
  constructor(context_id: u32, root_context: HeadersRoot) {
    super(context_id, root_context);
  }

  onRequestHeaders(count: u32, end_of_stream: bool): FilterHeadersStatusValues {
    log(LogLevelValues.info, "headers: on request headers");
    const request = stream_context.headers.request;
    if (request.get("x-deny") != "") {
      const headers = new Array<HeaderPair>();
      headers.push(new HeaderPair(String.UTF8.encode("x-denied-by"), String.UTF8.encode("wasm")));
      send_local_response(403, "denied", String.UTF8.encode("denied by wasm"), headers, GrpcStatusValues.InvalidCode);
      return FilterHeadersStatusValues.StopIteration;
    }
    request.add("x-wasm", "as");
    if (request.get("x-replace") != "") {
      request.replace("x-replace", "replaced");
    }
    request.remove("x-remove");
    const config = this.root_context.getConfiguration();
    if (config != "") {
      request.add("x-config", config);
    }
    return FilterHeadersStatusValues.Continue;
  }

  onResponseHeaders(count: u32, end_of_stream: bool): FilterHeadersStatusValues {
    log(LogLevelValues.info, "headers: on response headers");
    stream_context.headers.response.add("x-wasm-response", "yes");
    return FilterHeadersStatusValues.Continue;
  }
}

registerRootContext((context_id: u32): RootContext => new HeadersRoot(context_id), "");
registerRootContext((context_id: u32): RootContext => new HeadersRoot(context_id), "as_headers");
