// GraphiQL for m365-integration: queries and mutations over POST /graphql, subscriptions over
// /graphql/ws (graphql-transport-ws). The token the console keeps in sessionStorage prefills the
// Authorization header; whatever the headers editor holds is what is sent, on both transports.
(function () {
  "use strict";
  var TOKEN_KEY = "m365.token";
  var token = null;
  try { token = sessionStorage.getItem(TOKEN_KEY); } catch (e) { /* storage disabled */ }

  var wsUrl = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/graphql/ws";
  var ws = null; // { auth, client }

  function authOf(headers) {
    if (!headers) return null;
    for (var k in headers) {
      if (k.toLowerCase() === "authorization") return String(headers[k]);
    }
    return null;
  }

  function wsClient(auth) {
    if (ws && ws.auth === auth) return ws.client;
    if (ws) ws.client.dispose();
    var client = graphqlWs.createClient({
      url: wsUrl,
      lazy: true,
      connectionParams: auth ? { Authorization: auth } : {},
    });
    ws = { auth: auth, client: client };
    return client;
  }

  // The operations of a document, in order: [{ type, name }]. A scan of its top level (strings,
  // block strings and comments skipped; a bare `{` is a query); fragments are not operations.
  function operations(doc) {
    var ops = [];
    var depth = 0;
    var i = 0;
    var pending = null;
    while (i < doc.length) {
      var ch = doc[i];
      if (ch === "#") { while (i < doc.length && doc[i] !== "\n") i++; continue; }
      if (ch === '"') {
        if (doc.substr(i, 3) === '"""') { var end = doc.indexOf('"""', i + 3); i = end < 0 ? doc.length : end + 3; continue; }
        i++;
        while (i < doc.length && doc[i] !== '"' && doc[i] !== "\n") i += doc[i] === "\\" ? 2 : 1;
        i++;
        continue;
      }
      if (ch === "{" || ch === "(") {
        if (depth === 0 && ch === "{" && !pending) ops.push({ type: "query", name: null });
        if (depth === 0 && pending) { ops.push(pending); pending = null; }
        depth++; i++; continue;
      }
      if (ch === "}" || ch === ")") { depth--; i++; continue; }
      if (depth === 0 && /[A-Za-z_]/.test(ch)) {
        var m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(doc.slice(i));
        var word = m[0];
        if (word === "query" || word === "mutation" || word === "subscription") pending = { type: word, name: null };
        else if (word === "fragment") pending = { type: "fragment", name: null };
        else if (pending && pending.name === null && pending.type !== "fragment") pending.name = word;
        i += word.length;
        continue;
      }
      i++;
    }
    return ops.filter(function (o) { return o.type !== "fragment"; });
  }

  function isSubscription(params) {
    var ops = operations(params.query || "");
    var op = params.operationName
      ? ops.find(function (o) { return o.name === params.operationName; })
      : ops[0];
    return !!op && op.type === "subscription";
  }

  function fetcher(params, opts) {
    var headers = Object.assign({}, (opts && opts.headers) || {});
    if (isSubscription(params)) {
      var client = wsClient(authOf(headers));
      return {
        subscribe: function (observer) {
          var dispose = client.subscribe(params, {
            next: function (v) { observer.next(v); },
            error: function (e) {
              var message = e && e.reason ? "socket closed: " + e.code + " " + e.reason
                : (e && e.message) || String(e);
              observer.error(Array.isArray(e) ? { errors: e } : { errors: [{ message: message }] });
            },
            complete: function () { observer.complete(); },
          });
          return { unsubscribe: dispose };
        },
      };
    }
    headers["Content-Type"] = "application/json";
    headers["Accept"] = "application/graphql-response+json, application/json";
    return fetch("/graphql", { method: "POST", headers: headers, body: JSON.stringify(params) })
      .then(function (r) { return r.json(); });
  }

  var defaultQuery = [
    "# m365-integration: the Microsoft 365 tab's state.",
    "# Subscriptions run over /graphql/ws: try  subscription { m365SyncProgress { status tenantsDone } }",
    "{",
    "  m365Integration {",
    "    enabled",
    "    canManage",
    "    connection { status partnerTenantName connectedBy }",
    "    sync { state cooldownRemainingSeconds currentRun { phase tenantsDone tenantsTotal } }",
    "  }",
    "}",
    "",
  ].join("\n");

  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(React.createElement(GraphiQL, {
    fetcher: fetcher,
    defaultQuery: defaultQuery,
    headers: token ? JSON.stringify({ Authorization: "Bearer " + token }, null, 2) : undefined,
    defaultEditorToolsVisibility: token ? "headers" : true,
    shouldPersistHeaders: false,
  }));
})();
