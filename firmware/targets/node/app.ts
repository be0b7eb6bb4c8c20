import * as commands from "../../app/commands";
import * as config from "../../app/config";
import * as held from "../../app/held";
import { setLoader } from "../../app/lazy";

/**
 * The sensor node's lazy modules on Node (app/lazy.ts): plain imports, nothing to save there.
 * Imported by the host simulator's boards and by tests of the app.
 */
const MODULES: { [name: string]: unknown } = { commands, config, held };
setLoader((name) => MODULES[name]);
