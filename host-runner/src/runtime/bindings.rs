//! Rust bindings for the `connector` world, generated from `wit/`.

wasmtime::component::bindgen!({
    world: "connector",
    path: "../wit",
    imports: { default: trappable },
    with: {
        "nextcloud:connector/http.body": crate::http::ResponseBody,
        "nextcloud:connector/content.destination": crate::content::Destination,
    },
});
