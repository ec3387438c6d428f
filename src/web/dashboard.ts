/** The dashboard's entry: bundled by esbuild (`npm run build`) into dist/src/web/dashboard.{js,css}. */
import 'uplot/dist/uPlot.min.css';
import './dashboard.css';
import { html, render } from 'htm/preact';
import { App } from './app.js';

render(html`<${App} />`, document.getElementById('app')!);
