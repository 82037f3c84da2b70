// Which changes replace a resource, decided by @aws-cdk/cloudformation-diff: the comparison `cdk diff`
// runs, with the resource specification it ships (every property's "causes replacement": yes, maybe or no).
//
// It is the copy bundled in the pinned CDK CLI (node_modules/aws-cdk, reached through the CLI's exported
// DiffFormatter), so the diff needs no npm package of its own and always agrees with the `cdk diff` of the
// CLI that deploys. The CLI's package.json exports no library entry point, hence the file path.
//
// Input: one request per line of stdin (JSON):
//   {"cli": "<path of node_modules/aws-cdk/lib/index.js>",
//    "resources": [{"old": <resource>, "new": <resource>}, ...],
//    "replacing": [{"type": "AWS::S3::Bucket", "properties": ["BucketName", ...]}, ...]}
// Output: one answer per line of stdout (JSON), in the same order:
//   {"resources": [{"impact": "WILL_REPLACE", "properties": {"Name": "WILL_REPLACE", "WorkerType": "WILL_UPDATE"}}, ...],
//    "replacing": [["BucketName"], ...]}   (the asked properties whose change would replace the resource)
// A property the specification does not know (every property of Custom::* or of a type newer than the
// CLI) is NO_CHANGE even when its value changed: the caller reports that replacement as unknown.
// It answers until stdin closes: the Python side keeps one such process for all the comparisons of a
// process (a test run makes dozens) instead of loading the 16 MB CLI bundle for each.
"use strict";

const readline = require("node:readline");

let DiffFormatter = null;

function diff(oldResource, newResource) {
  const oldTemplate = { Resources: { R: oldResource } };
  const newTemplate = { Resources: { R: newResource } };
  const formatter = new DiffFormatter({ templateInfo: { oldTemplate, newTemplate: { template: newTemplate, stackName: "diff" } } });
  let found = null;
  formatter.computeDiff("diff", oldTemplate, newTemplate).resources.forEachDifference((_, difference) => {
    found = difference;
  });
  return found;
}

function answer(request) {
  ({ DiffFormatter } = require(request.cli));
  const resources = request.resources.map(({ old, new: current }) => {
    const difference = diff(old, current);
    if (difference === null) return { impact: "NO_CHANGE", properties: {} };
    const properties = {};
    for (const [name, property] of Object.entries(difference.propertyUpdates)) properties[name] = property.changeImpact;
    return { impact: difference.changeImpact, properties };
  });

  const replacing = request.replacing.map(({ type, properties }) =>
    properties.filter((name) => {
      const difference = diff({ Type: type, Properties: { [name]: "a" } }, { Type: type, Properties: { [name]: "b" } });
      return difference !== null && difference.propertyUpdates[name].changeImpact === "WILL_REPLACE";
    }),
  );
  return { resources, replacing };
}

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  process.stdout.write(JSON.stringify(answer(JSON.parse(line))) + "\n");
});
