// Exported from load.toml by prodready-loadtest: run it with `k6 run`.
// CSV files are opened relative to this script: keep it beside the scenario file.
// k6's http_req_duration is the time from the actual send (our http_req_service_duration);
// thresholds on http_req_service_duration are judged on it here.
import http from 'k6/http';
import { check, sleep } from 'k6';
import exec from 'k6/execution';
import { SharedArray } from 'k6/data';

export const options = {
  "scenarios": {
    "browse": {
      "exec": "scenario_browse",
      "executor": "ramping-arrival-rate",
      "gracefulStop": "30s",
      "maxVUs": 50,
      "preAllocatedVUs": 5,
      "stages": [
        {
          "duration": "30s",
          "target": 100
        },
        {
          "duration": "90s",
          "target": 0
        }
      ],
      "startRate": 10,
      "startTime": "0s",
      "tags": {
        "team": "web"
      },
      "timeUnit": "500ms"
    },
    "each": {
      "exec": "scenario_each",
      "executor": "per-vu-iterations",
      "gracefulStop": "30s",
      "iterations": 1,
      "maxDuration": "600s",
      "startTime": "0s",
      "vus": 1
    },
    "fixed": {
      "duration": "1s",
      "exec": "scenario_fixed",
      "executor": "constant-arrival-rate",
      "gracefulStop": "30s",
      "maxVUs": 1,
      "preAllocatedVUs": 1,
      "rate": 3,
      "startTime": "0s",
      "timeUnit": "1s"
    },
    "ramp-up": {
      "exec": "scenario_ramp_up",
      "executor": "ramping-vus",
      "gracefulRampDown": "30s",
      "gracefulStop": "1s",
      "stages": [
        {
          "duration": "10s",
          "target": 3
        }
      ],
      "startTime": "5s",
      "startVUs": 0
    },
    "shared": {
      "exec": "scenario_shared",
      "executor": "shared-iterations",
      "gracefulStop": "30s",
      "iterations": 4,
      "maxDuration": "20s",
      "startTime": "0s",
      "vus": 2
    },
    "steady": {
      "duration": "1500ms",
      "exec": "scenario_steady",
      "executor": "constant-vus",
      "gracefulStop": "30s",
      "startTime": "0s",
      "vus": 2
    }
  },
  "summaryTrendStats": [
    "avg",
    "p(99)"
  ],
  "thresholds": {
    "checks": [
      "rate>0.99"
    ],
    "http_req_duration": [
      "p(95)<300",
      {
        "abortOnFail": true,
        "delayAbortEval": "5s",
        "threshold": "p(99)<1000"
      },
      "p(99)<500"
    ],
    "http_req_duration{name:items}": [
      "avg<100"
    ]
  }
};

function randomInt(lo, hi) {
  return Math.floor(Math.random() * (hi - lo + 1)) + lo;
}

function oneOf(values) {
  return values[Math.floor(Math.random() * values.length)];
}

function pause(min, max) {
  sleep(min + Math.random() * (max - min));
}

// The value at a path in a JSON body, undefined when there is none.
function jsonAt(r, path) {
  let value;
  try {
    value = JSON.parse(r.body);
  } catch (e) {
    return undefined;
  }
  for (const step of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = value[step];
  }
  return value;
}

function present(value) {
  return value !== undefined && value !== null;
}

function same(found, want) {
  if (typeof found === 'number' && typeof want === 'number') return found === want;
  return found !== undefined && JSON.stringify(found) === JSON.stringify(want);
}

function headerContains(r, name, text) {
  return Object.keys(r.headers).some(
    (k) => k.toLowerCase() === name && String(r.headers[k]).includes(text),
  );
}

// RFC 4180 CSV (quoted fields, "" for a quote), the header row left out.
function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c === '"') {
      quoted = true;
    } else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else {
      field += c;
    }
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows.slice(1).filter((r) => !(r.length === 1 && r[0] === ''));
}

const data0 = new SharedArray("users", () => parseCsv(open("users.csv")));

// This iteration's variables: random values and data rows, drawn once.
function vars() {
  const row0 = data0[Math.floor(Math.random() * data0.length)];
  return {
    "color": oneOf(["red","blue"]),
    "env": "staging",
    "page": String(randomInt(1, 10)),
    "users.name": row0[0],
  };
}

// Scenario "browse".
export function scenario_browse() {
  const v = vars();
  let r;
  r = http.request("GET", "http://127.0.0.1:8080/items?page=" + v["page"] + "&user=" + v["users.name"] + "&vu=" + String(__VU), null, { headers: { "accept": "application/json", "x-color": v["color"] }, tags: { name: "items" } });
  check(r, {
    "items: status in [200, 204]": (r) => [200,204].includes(r.status),
    "items: body contains \"it's \\\"here\\\"\"": (r) => typeof r.body === 'string' && r.body.includes("it's \"here\""),
    "items: json $.items[0].id == 1": (r) => same(jsonAt(r, ["items",0,"id"]), 1),
    "items: header content-type contains \"json\"": (r) => headerContains(r, "content-type", "json"),
    "items: duration <= 250ms": (r) => r.status !== 0 && r.timings.duration <= 250,
  });
  sleep(0.1);
  pause(1, 2);
}

// Scenario "each".
export function scenario_each() {
  const v = vars();
  let r;
  r = http.request("GET", "http://127.0.0.1:8080/", null, { tags: { name: "http://127.0.0.1:8080/" } });
}

// Scenario "fixed".
export function scenario_fixed() {
  const v = vars();
  let r;
  r = http.request("GET", "http://127.0.0.1:8080/", null, { tags: { name: "http://127.0.0.1:8080/" } });
}

// Scenario "ramp-up".
export function scenario_ramp_up() {
  const v = vars();
  let r;
  r = http.request("POST", "http://127.0.0.1:8080/echo", "iter=" + String(exec.vu.iterationInScenario) + " in " + exec.scenario.name + " as " + v["env"], { tags: { name: "http://127.0.0.1:8080/echo" } });
}

// Scenario "shared".
export function scenario_shared() {
  const v = vars();
  let r;
  r = http.request("GET", "http://127.0.0.1:8080/", null, { tags: { name: "http://127.0.0.1:8080/" } });
}

// Scenario "steady".
export function scenario_steady() {
  const v = vars();
  let r;
  r = http.request("GET", "http://127.0.0.1:8080/", null, { tags: { name: "http://127.0.0.1:8080/" } });
}
