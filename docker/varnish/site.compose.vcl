# docker compose (profile edge): shop-api by its service name; purges from shop-api's containers only.
# Both names are resolved when the VCL loads, so the service depends on shop-api being up.
backend default {
    .host = "shop-api";
    .port = "3000";
    .connect_timeout = 2s;
    .first_byte_timeout = 10s;
}

acl purgers {
    "localhost";
    "shop-api";
}

sub site_ttl {
    set beresp.ttl = 10s;
    set beresp.grace = 5s;
}
