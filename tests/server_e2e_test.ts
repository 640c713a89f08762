/** The end-to-end cases against one in-process node with in-memory presence. */
import { chatCases } from "./e2e/chat_cases.ts";
import { linkCases } from "./e2e/link_cases.ts";
import { leaveCases } from "./e2e/leave_cases.ts";
import { guessCases } from "./e2e/guess_cases.ts";
import { nameCases } from "./e2e/name_cases.ts";
import { withServer } from "./helpers/harness.ts";

const t = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name: `single node: ${name}`, fn });

chatCases(t, withServer);
linkCases(t, withServer);
guessCases(t, withServer);
nameCases(t, withServer);
leaveCases(t, withServer);
