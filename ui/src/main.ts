import { mount } from "svelte";
import "./app.css";
import App from "./App.svelte";
import TrainerApp from "./TrainerApp.svelte";
import WallApp from "./WallApp.svelte";
import { createBackend } from "./ipc";
import { stubBasemapTiles } from "./map/mapController";

const backend = createBackend();
if (backend.kind === "fake") stubBasemapTiles();

const target = document.getElementById("app");
if (!target) throw new Error("index.html has no #app element");

// The trainer view and the wall display are the same bundle in their own windows, told apart
// by their address.
const view = new URLSearchParams(window.location.search).get("view");
const Root = view === "trainer" ? TrainerApp : view === "wall" ? WallApp : App;
export default mount(Root, { target, props: { backend } });
