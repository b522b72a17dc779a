# Edge cache (optional node `edge`, docs/q1-hot-products.md "Edge tier"): Varnish in front of shop-api.
# Caches anonymous product reads for a short TTL, passes everything else, and takes PURGE/BAN only from
# the `purgers` ACL. shop-api's EdgePurger (libs/cache/src/edge-purger.ts) sends them after product writes,
# from the cache invalidation bus.
#   PURGE /products/<id>                           drops that product's copy (all variants, grace too)
#   BAN /  with  X-Ban-Url: <regex on the URL>     invalidates every copy whose URL matches (list pages)
# The backend and the ACL are per deployment, in site.vcl (the native launcher writes one into its own
# folder; compose mounts docker/varnish/site.compose.vcl): it defines `backend default`, `acl purgers` and
# `sub site_ttl` (how long a product read is kept).
vcl 4.1;

import std;

include "site.vcl";

sub vcl_recv {
    if (req.method == "PURGE" || req.method == "BAN") {
        if (client.ip !~ purgers) {
            return (synth(403, "purge not allowed from this client"));
        }
        if (req.method == "PURGE") {
            return (purge);
        }
        if (!req.http.X-Ban-Url || req.http.X-Ban-Url !~ "^\^/") {
            return (synth(400, "BAN needs X-Ban-Url: a regex anchored at the URL's start (^/...)"));
        }
        # Lurker-friendly: tests obj.http only, so the ban lurker can evaluate it in the background.
        ban("obj.http.X-Url ~ " + req.http.X-Ban-Url);
        return (synth(200, "banned"));
    }
    if (req.method != "GET" && req.method != "HEAD") {
        return (pass);
    }
    # Anything that can make the answer personal or consistency-bound is never served from the edge.
    if (req.http.Authorization || req.http.Cookie || req.http.X-Consistency-Token) {
        return (pass);
    }
    # Anonymous product reads only: one product, a category's product list. Everything else passes.
    if (req.url ~ "^/products/[1-9][0-9]{0,18}$" || req.url ~ "^/categories/[a-z][a-z0-9-]{0,63}/products(\?[A-Za-z0-9=&_-]*)?$") {
        return (hash);
    }
    return (pass);
}

sub vcl_hash {
    # One site: the URL alone is the key, so a purge from shop-api hits whatever Host the reader sent.
    hash_data(req.url);
    return (lookup);
}

sub vcl_backend_response {
    set beresp.http.X-Url = bereq.url;
    # The backend's word wins where it says the answer is personal.
    if (beresp.http.Set-Cookie || beresp.http.Cache-Control ~ "(private|no-store|no-cache)") {
        set beresp.uncacheable = true;
        set beresp.ttl = 1s;
        return (deliver);
    }
    if (beresp.status == 200 || beresp.status == 404) {
        # site_ttl (site.vcl) sets beresp.ttl and beresp.grace: the edge's staleness budget when a purge is
        # lost is TTL + grace (a purge drops grace copies too). Default 10 s + 5 s.
        call site_ttl;
        return (deliver);
    }
    # Errors and everything else: not kept (a short hit-for-miss so a failing key does not queue readers).
    set beresp.uncacheable = true;
    set beresp.ttl = 1s;
    return (deliver);
}

sub vcl_deliver {
    unset resp.http.X-Url;
    if (obj.hits > 0) {
        set resp.http.X-Edge = "hit";
        # A cached copy carries the request id of the request that filled it: give this one its own.
        set resp.http.X-Request-Id = "edge-" + req.xid;
    } else {
        set resp.http.X-Edge = "miss";
    }
}

sub vcl_synth {
    # Refusals in the project's JSON error shape ({"error":{"status","code","message"}}).
    if (resp.status == 403 || resp.status == 400) {
        set resp.http.Content-Type = "application/json";
        if (resp.status == 403) {
            set resp.body = """{"error":{"status":403,"code":"forbidden","message":"PURGE and BAN are accepted from the purgers ACL only"}}""";
        } else {
            set resp.body = """{"error":{"status":400,"code":"bad_request","message":"BAN needs X-Ban-Url: a regex anchored at the start of the URL (^/...)"}}""";
        }
        return (deliver);
    }
    if (resp.status == 200) {
        set resp.http.Content-Type = "application/json";
        set resp.body = """{"ok":true}""";
        return (deliver);
    }
}

sub vcl_backend_error {
    set beresp.http.Content-Type = "application/json";
    set beresp.body = """{"error":{"status":503,"code":"unavailable","message":"the edge could not reach shop-api"}}""";
    set beresp.ttl = 0s;
    return (deliver);
}
