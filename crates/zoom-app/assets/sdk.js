// The one place the panel gets the Zoom Apps SDK from: the vendored npm build (see VENDORED.md).
// The browser test serves its SDK double under this name instead.
export { default } from "./vendor/appssdk-0.16.41.es.js";
