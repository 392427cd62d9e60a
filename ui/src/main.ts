import { mount } from "svelte";
import "./app.css";
import App from "./App.svelte";
import TrainerApp from "./TrainerApp.svelte";
import { createBackend } from "./ipc";
import { stubBasemapTiles } from "./map/mapController";

const backend = createBackend();
if (backend.kind === "fake") stubBasemapTiles();

const target = document.getElementById("app");
if (!target) throw new Error("index.html has no #app element");

// The trainer view is the same bundle in its own window, told apart by its address.
const trainer = new URLSearchParams(window.location.search).get("view") === "trainer";
export default trainer ? mount(TrainerApp, { target, props: { backend } }) : mount(App, { target, props: { backend } });
