"""``runvoy setup --provider aws [--dry-run]``: create or check what runvoy needs, idempotently.

Each step reads first and only creates what is missing, so running it twice changes nothing the second time.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from typing import Any

from runvoy_aws import register, store
from runvoy_aws.clients import AwsClients, aws_call, bexc, error_code
from runvoy_aws.config import AwsConfig
from runvoy_core.errors import RunvoyError

Step = dict[str, Any]
EXECUTION_POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
ECS_TASKS_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}
# what AmazonECSTaskExecutionRolePolicy grants (image pulls, log writes), plus reading secrets; inline so
# that setup does not depend on the managed policy being attachable in the partition
EXECUTION_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "ecr:GetAuthorizationToken",
                "ecr:BatchCheckLayerAvailability",
                "ecr:GetDownloadUrlForLayer",
                "ecr:BatchGetImage",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
            ],
            "Resource": "*",
        },
        {
            "Effect": "Allow",
            "Action": ["ssm:GetParameters", "secretsmanager:GetSecretValue", "kms:Decrypt"],
            "Resource": "*",
        },
    ],
}
CAPACITY_PROVIDERS = ["FARGATE", "FARGATE_SPOT"]


def _document(answer: dict[str, Any]) -> dict[str, Any]:
    document = answer["PolicyDocument"]
    if isinstance(document, str):  # IAM answers URL-encoded JSON; boto3 decodes it, moto may not
        import urllib.parse

        document = json.loads(urllib.parse.unquote(document))
    return dict(document)


def policy_allows(documents: list[dict[str, Any]], action: str, resource: str) -> bool:
    """Whether an Allow statement without a condition grants ``action`` on ``resource`` and no Deny takes it
    back: the subset of IAM's evaluation that a runvoy-made or hand-written execution role uses (wildcards in
    actions and resources; NotAction, NotResource and conditions count as not granting)."""
    import fnmatch

    def listed(value: Any) -> list[str]:
        return [value] if isinstance(value, str) else list(value or [])

    def matches(patterns: list[str], text: str, *, fold: bool) -> bool:
        if fold:
            return any(fnmatch.fnmatchcase(text.lower(), p.lower()) for p in patterns)
        return any(fnmatch.fnmatchcase(text, p) for p in patterns)

    allowed = False
    for document in documents:
        statements = document.get("Statement") or []
        for statement in [statements] if isinstance(statements, dict) else statements:
            if not isinstance(statement, dict) or "Condition" in statement:
                continue
            if not matches(listed(statement.get("Action")), action, fold=True):
                continue
            if not matches(listed(statement.get("Resource")), resource, fold=False):
                continue
            if statement.get("Effect") == "Deny":
                return False
            if statement.get("Effect") == "Allow":
                allowed = True
    return allowed


def _step(resource: str, action: str, detail: str) -> Step:
    return {"resource": resource, "action": action, "detail": detail}


class AwsSetup:
    index_wait = 600.0
    """Seconds setup waits for DynamoDB to build an index it added."""

    def __init__(self, clients: AwsClients, config: AwsConfig, region: str) -> None:
        self._clients = clients
        self._config = config
        self._region = region
        self._tags = {"managed-by": "runvoy", **config.tags}

    def run(self, dry_run: bool) -> list[Step]:
        steps: list[Callable[[bool], Step]] = [
            self._cluster,
            self._log_group,
            self._executions_table,
            self._locks_table,
            self._bucket,
            self._execution_role,
            self._network,
        ]
        if self._config.registry_credentials:
            steps.insert(-1, self._registry_credentials)
        results = []
        for step in steps:
            try:
                results.append(step(dry_run))
            except RunvoyError as exc:
                results.append(
                    _step(step.__name__.strip("_").replace("_", " "), "manual", f"{exc} ({exc.hint})")
                )
        return results

    # -- ECS ------------------------------------------------------------------------------------------
    def _cluster(self, dry_run: bool) -> Step:
        ecs = self._clients.client("ecs")
        name = self._config.cluster
        resource = f"ECS cluster {name}"
        with aws_call("describe ECS cluster"):
            found = [
                c
                for c in ecs.describe_clusters(clusters=[name]).get("clusters", [])
                if c.get("status") == "ACTIVE"
            ]
        if found:
            have = set(found[0].get("capacityProviders") or [])
            missing = [p for p in CAPACITY_PROVIDERS if p not in have]
            if not missing:
                return _step(resource, "exists", "capacity providers FARGATE, FARGATE_SPOT")
            if dry_run:
                return _step(resource, "would update", f"add capacity providers {', '.join(missing)}")
            with aws_call("set the cluster's capacity providers"):
                ecs.put_cluster_capacity_providers(
                    cluster=name,
                    capacityProviders=sorted(have | set(CAPACITY_PROVIDERS)),
                    defaultCapacityProviderStrategy=found[0].get("defaultCapacityProviderStrategy") or [],
                )
            return _step(resource, "updated", f"added capacity providers {', '.join(missing)}")
        if dry_run:
            return _step(resource, "would create", "with capacity providers FARGATE, FARGATE_SPOT")
        with aws_call("create ECS cluster"):
            ecs.create_cluster(
                clusterName=name,
                capacityProviders=CAPACITY_PROVIDERS,
                tags=[{"key": k, "value": v} for k, v in self._tags.items()],
            )
            # moto and older API versions ignore capacityProviders on CreateCluster
            ecs.put_cluster_capacity_providers(
                cluster=name, capacityProviders=CAPACITY_PROVIDERS, defaultCapacityProviderStrategy=[]
            )
        return _step(resource, "created", "with capacity providers FARGATE, FARGATE_SPOT")

    # -- CloudWatch Logs --------------------------------------------------------------------------------
    def _log_group(self, dry_run: bool) -> Step:
        logs = self._clients.client("logs")
        name, days = self._config.log_group, self._config.log_retention_days
        resource = f"log group {name}"
        with aws_call("describe log groups"):
            groups = logs.describe_log_groups(logGroupNamePrefix=name).get("logGroups", [])
        group = next((g for g in groups if g.get("logGroupName") == name), None)
        if group is not None:
            if group.get("retentionInDays") == days:
                return _step(resource, "exists", f"retention {days} days")
            if dry_run:
                return _step(
                    resource, "would update", f"retention {group.get('retentionInDays')} -> {days} days"
                )
            with aws_call("set log retention"):
                logs.put_retention_policy(logGroupName=name, retentionInDays=days)
            return _step(resource, "updated", f"retention {days} days")
        if dry_run:
            return _step(resource, "would create", f"retention {days} days")
        with aws_call("create log group"):
            logs.create_log_group(logGroupName=name, tags=self._tags)
            logs.put_retention_policy(logGroupName=name, retentionInDays=days)
        return _step(resource, "created", f"retention {days} days")

    # -- DynamoDB ---------------------------------------------------------------------------------------
    def _executions_table(self, dry_run: bool) -> Step:
        """Create the table, or bring an older one to the current layout: add the indexes it lacks (one
        at a time, as DynamoDB allows), then write the label items and count the cost of the runs it
        already holds (one Scan, once; ``meta``/``layout`` records that it is done)."""
        definition = store.table_definition(self._config.executions_table)
        db = self._clients.client("dynamodb")
        name = definition["TableName"]
        resource = f"DynamoDB table {name}"
        records = store.DynamoStore(db, name, self._clients_s3, self._config.bucket)
        table = self._describe(db, name)
        if table is None:
            step = self._create_table(definition, dry_run)
            if not dry_run:
                records.mark_layout()
            return step
        missing = self._missing(definition, table)
        layout = records.layout()
        if not missing and layout >= store.LAYOUT and not self._building(table):
            wanted = sorted(i["IndexName"] for i in definition["GlobalSecondaryIndexes"])
            return _step(resource, "exists", f"on-demand, indexes {', '.join(wanted)}")
        todo = [f"add the index {i['IndexName']}" for i in missing]
        if layout < store.LAYOUT:
            todo.append("index the labels and count the cost of the runs it holds")
        if dry_run:
            return _step(resource, "would update", "; ".join(todo) or "wait for its indexes to be built")
        done = self._add_indexes(db, definition, missing)
        if layout < store.LAYOUT:
            indexed = counted = 0
            stored = records.stored_records()
            while batch := list(itertools.islice(stored, 100)):
                records.index_labels(batch)
                indexed += len(batch)
                counted += sum(records.add_to_rollups(e) for e in batch if e.status.is_terminal)
            records.mark_layout()
            done.append(f"indexed the labels of {indexed} runs, counted {counted} in the cost rollups")
        building = self._building(self._wait_for_indexes(db, name))
        if building or len(done) < len(todo):
            done.append(
                f"DynamoDB is still building {', '.join(building) or 'an index'}: run setup again later"
            )
        return _step(resource, "updated", "; ".join(done))

    def _add_indexes(self, db: Any, definition: dict[str, Any], missing: list[dict[str, Any]]) -> list[str]:
        """UpdateTable once per missing index, each once no other index is being built (DynamoDB builds one
        at a time); stops at the first still building after ``index_wait``."""
        name = definition["TableName"]
        done: list[str] = []
        for index in missing:
            if self._building(self._wait_for_indexes(db, name)):
                break
            attributes = {k["AttributeName"] for k in index["KeySchema"]}
            with aws_call(f"add the index {index['IndexName']}"):
                db.update_table(
                    TableName=name,
                    AttributeDefinitions=[
                        a for a in definition["AttributeDefinitions"] if a["AttributeName"] in attributes
                    ],
                    GlobalSecondaryIndexUpdates=[{"Create": index}],
                )
            done.append(f"added the index {index['IndexName']}")
        return done

    @staticmethod
    def _missing(definition: dict[str, Any], table: dict[str, Any]) -> list[dict[str, Any]]:
        have = {i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])}
        return [i for i in definition.get("GlobalSecondaryIndexes", []) if i["IndexName"] not in have]

    def _clients_s3(self) -> Any:
        return self._clients.client("s3")

    @staticmethod
    def _describe(db: Any, name: str) -> dict[str, Any] | None:
        with aws_call("describe DynamoDB table"):
            try:
                table: dict[str, Any] = db.describe_table(TableName=name)["Table"]
            except bexc.ClientError as exc:
                if error_code(exc) != "ResourceNotFoundException":
                    raise
                return None
        return table

    @staticmethod
    def _building(table: dict[str, Any] | None) -> list[str]:
        return [
            i["IndexName"]
            for i in (table or {}).get("GlobalSecondaryIndexes", [])
            if i.get("IndexStatus", "ACTIVE") != "ACTIVE"
        ]

    def _wait_for_indexes(self, db: Any, name: str) -> dict[str, Any] | None:
        """The table once no index is being built, or as it is after ``index_wait`` seconds (a backfill of
        a large table takes longer than anyone should wait for setup)."""
        deadline = time.monotonic() + self.index_wait
        while True:
            table = self._describe(db, name)
            if not self._building(table) or time.monotonic() >= deadline:
                return table
            time.sleep(5.0)

    def _locks_table(self, dry_run: bool) -> Step:
        """Create the table, or add ``by-kind`` to an older one and tag its locks (decision 0309)."""
        definition = register.table_definition(self._config.locks_table)
        db = self._clients.client("dynamodb")
        name = definition["TableName"]
        table = self._describe(db, name)
        if table is None:
            return self._create_table(definition, dry_run)
        resource = f"DynamoDB table {name}"
        missing = self._missing(definition, table)
        locks = register.DynamoLockRegister(db, name)
        untagged = locks.tag_untagged(dry_run=True)
        if not missing and not untagged and not self._building(table):
            return _step(resource, "exists", f"on-demand, index {register.BY_KIND}")
        todo = [f"add the index {i['IndexName']}" for i in missing]
        if untagged:
            todo.append(f"tag {untagged} locks for it")
        if dry_run:
            return _step(resource, "would update", "; ".join(todo) or "wait for its index to be built")
        done = self._add_indexes(db, definition, missing)
        if untagged:
            done.append(f"tagged {locks.tag_untagged(dry_run=False)} locks")
        building = self._building(self._wait_for_indexes(db, name))
        if building or len(done) < len(todo):
            done.append(
                f"DynamoDB is still building {', '.join(building) or 'an index'}: run setup again later"
            )
        return _step(resource, "updated", "; ".join(done))

    def _create_table(self, definition: dict[str, Any], dry_run: bool) -> Step:
        db = self._clients.client("dynamodb")
        name = definition["TableName"]
        resource = f"DynamoDB table {name}"
        if dry_run:
            return _step(resource, "would create", "on-demand capacity")
        with aws_call("create DynamoDB table"):
            db.create_table(**definition, Tags=[{"Key": k, "Value": v} for k, v in self._tags.items()])
            db.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 2, "MaxAttempts": 60})
        return _step(resource, "created", "on-demand capacity")

    # -- S3 ---------------------------------------------------------------------------------------------
    def _bucket(self, dry_run: bool) -> Step:
        bucket = self._config.bucket
        if not bucket:
            return _step("S3 bucket", "skipped", "no providers.aws.bucket configured: logs are not archived")
        s3 = self._clients.client("s3")
        resource = f"S3 bucket {bucket}"
        with aws_call("check S3 bucket"):
            try:
                s3.head_bucket(Bucket=bucket)
                return _step(resource, "exists", "log archive and large records")
            except bexc.ClientError as exc:
                if error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                    raise
        if dry_run:
            return _step(resource, "would create", "private, encrypted")
        with aws_call("create S3 bucket"):
            kwargs: dict[str, Any] = {"Bucket": bucket}
            if self._region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self._region}
            s3.create_bucket(**kwargs)
            s3.put_public_access_block(
                Bucket=bucket,
                PublicAccessBlockConfiguration={
                    "BlockPublicAcls": True,
                    "IgnorePublicAcls": True,
                    "BlockPublicPolicy": True,
                    "RestrictPublicBuckets": True,
                },
            )
        return _step(resource, "created", "private, encrypted (SSE-S3 default)")

    # -- IAM --------------------------------------------------------------------------------------------
    def _execution_role(self, dry_run: bool) -> Step:
        iam = self._clients.client("iam")
        arn = self._config.execution_role_arn
        name = arn.rsplit("/", 1)[-1] if arn else self._config.execution_role_name
        resource = f"IAM role {name}"
        with aws_call("read IAM role"):
            try:
                role = iam.get_role(RoleName=name)["Role"]
                return _step(resource, "exists", f"{role['Arn']} (task execution role)")
            except bexc.ClientError as exc:
                code = error_code(exc)
                if code in ("AccessDenied", "AccessDeniedException"):
                    return _step(resource, "manual", self._role_advice(name, "cannot read IAM roles"))
                if code != "NoSuchEntity":
                    raise
        if arn:
            return _step(resource, "manual", f"{arn} does not exist: create it or fix execution_role_arn")
        if dry_run:
            return _step(
                resource,
                "would create",
                "trusted by ecs-tasks.amazonaws.com: pull images, write logs, read secrets",
            )
        try:
            with aws_call("create IAM role"):
                iam.create_role(
                    RoleName=name,
                    AssumeRolePolicyDocument=json.dumps(ECS_TASKS_TRUST),
                    Description="runvoy: lets ECS pull images, write logs and read secrets for runvoy tasks",
                    Tags=[{"Key": k, "Value": v} for k, v in self._tags.items()],
                )
                iam.put_role_policy(
                    RoleName=name,
                    PolicyName="runvoy-task-execution",
                    PolicyDocument=json.dumps(EXECUTION_POLICY),
                )
        except RunvoyError as exc:
            return _step(resource, "manual", self._role_advice(name, str(exc)))
        return _step(resource, "created", "task execution role")

    def _role_advice(self, name: str, why: str) -> str:
        return (
            f"{why}: ask an administrator for a role named {name} trusted by ecs-tasks.amazonaws.com with "
            f"{EXECUTION_POLICY_ARN} (plus ssm:GetParameters / secretsmanager:GetSecretValue for --secret), or set providers.aws.execution_role_arn to an existing one"
        )

    # -- private registries (decision 0811) -------------------------------------------------------------
    def _registry_credentials(self, dry_run: bool) -> Step:
        """Checks (never creates: the values are the user's) that each secret of ``registry_credentials``
        exists and that the execution role may read it, and decrypt it when a customer key encrypts it."""
        entries = self._config.registry_credentials
        if not entries:
            return _step(
                "registry credentials", "skipped", "no providers.aws.registry_credentials configured"
            )
        from runvoy_aws.registries import RepositoryCredentials

        arn = self._config.execution_role_arn
        role = arn.rsplit("/", 1)[-1] if arn else self._config.execution_role_name
        sm = self._clients.client("secretsmanager")
        documents = self._role_policies(role)
        problems: list[str] = []
        fine: list[str] = []
        for host, secret in sorted(entries.items()):
            try:
                secret_arn = RepositoryCredentials(sm).arn(host, secret)
                with aws_call(f"describe the secret of registry {host}"):
                    kms_key = sm.describe_secret(SecretId=secret_arn).get("KmsKeyId")
            except RunvoyError as exc:
                problems.append(f"{host}: {exc} ({exc.hint})")
                continue
            needed = [("secretsmanager:GetSecretValue", secret_arn)]
            if kms_key and not str(kms_key).startswith("alias/aws/"):
                needed.append(("kms:Decrypt", str(kms_key)))
            if documents is None:
                problems.append(
                    f"{host}: cannot read the policies of the role {role}: make sure it allows "
                    + ", ".join(f"{action} on {resource}" for action, resource in needed)
                )
                continue
            missing = [(a, r) for a, r in needed if not policy_allows(documents, a, r)]
            if missing:
                problems.append(
                    f"{host}: the role {role} needs "
                    + ", ".join(f"{action} on {resource}" for action, resource in missing)
                )
            else:
                fine.append(f"{host} -> {secret_arn}")
        if problems:
            return _step("registry credentials", "manual", "; ".join(problems))
        return _step("registry credentials", "exists", f"readable by {role}: " + "; ".join(fine))

    def _role_policies(self, role: str) -> list[dict[str, Any]] | None:
        """The role's inline and attached policy documents; None when they cannot be read."""
        iam = self._clients.client("iam")
        try:
            with aws_call("read the execution role's policies"):
                documents = []
                for name in iam.list_role_policies(RoleName=role).get("PolicyNames", []):
                    documents.append(_document(iam.get_role_policy(RoleName=role, PolicyName=name)))
                for attached in iam.list_attached_role_policies(RoleName=role).get("AttachedPolicies", []):
                    policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
                    version = iam.get_policy_version(
                        PolicyArn=attached["PolicyArn"], VersionId=policy["DefaultVersionId"]
                    )["PolicyVersion"]
                    documents.append(_document(version))
        except RunvoyError:
            return None
        return documents

    # -- network ----------------------------------------------------------------------------------------
    def _network(self, dry_run: bool) -> Step:
        from runvoy_aws.compute import default_network

        subnets, groups = default_network(
            self._clients.client("ec2"), list(self._config.subnets), list(self._config.security_groups)
        )
        origin = "configured" if self._config.subnets else "default VPC"
        return _step(
            "network",
            "exists",
            f"{origin}: subnets {', '.join(subnets)}; security groups {', '.join(groups)}",
        )
