import { mount } from "svelte";
import "./app.css";
import App from "./App.svelte";
import { createBackend } from "./ipc";
import { stubBasemapTiles } from "./map/mapController";

const backend = createBackend();
if (backend.kind === "fake") stubBasemapTiles();

const target = document.getElementById("app");
if (!target) throw new Error("index.html has no #app element");

export default mount(App, { target, props: { backend } });
