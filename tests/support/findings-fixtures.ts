/**
 * Finding events as EventBridge delivers them to an SQS queue, in the shapes AWS documents: a GuardDuty
 * "GuardDuty Finding" event (the finding format of docs.aws.amazon.com/guardduty/latest/ug/guardduty_findings-format.html
 * and its EventBridge envelope, guardduty_findings_eventbridge.html, with the fields of the console's
 * sample findings) and a Security Hub "Security Hub Findings - Imported" event
 * (securityhub-cwe-event-formats.html) carrying an ASFF finding (securityhub-findings-format.html, the
 * AwsIamAccessKey / AwsEc2Instance / AwsIamRole resource details of asff-resourcedetails-awsiam.html and
 * asff-resourcedetails-awsec2.html). Ids, accounts and severities are parameters.
 */

/** A GuardDuty finding about an IAM user's access key (UnauthorizedAccess:IAMUser/…). */
export function guardDutyKeyEvent(options: {
  findingId: string;
  accountId: string;
  accessKeyId: string;
  userName: string;
  severity?: number;
  userType?: 'IAMUser' | 'AssumedRole' | 'Root';
  title?: string;
  region?: string;
}): Record<string, unknown> {
  const region = options.region ?? 'us-east-1';
  const now = '2026-11-23T10:15:42.513Z';
  return {
    version: '0',
    id: 'c8c4daa7-a20c-2f03-0070-b7393dd542ad',
    'detail-type': 'GuardDuty Finding',
    source: 'aws.guardduty',
    account: options.accountId,
    time: now,
    region,
    resources: [],
    detail: {
      schemaVersion: '2.0',
      accountId: options.accountId,
      region,
      partition: 'aws',
      id: options.findingId,
      arn: `arn:aws:guardduty:${region}:${options.accountId}:detector/12abc34d567e8fa901bc2d34e56789f0/finding/${options.findingId}`,
      type: 'UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS',
      resource: {
        resourceType: 'AccessKey',
        accessKeyDetails: {
          accessKeyId: options.accessKeyId,
          principalId: 'AIDACKCEVSQ6C2EXAMPLE',
          userName: options.userName,
          userType: options.userType ?? 'IAMUser',
        },
      },
      service: {
        serviceName: 'guardduty',
        detectorId: '12abc34d567e8fa901bc2d34e56789f0',
        action: {
          actionType: 'AWS_API_CALL',
          awsApiCallAction: {
            api: 'ListBuckets',
            serviceName: 's3.amazonaws.com',
            callerType: 'Remote IP',
            remoteIpDetails: {
              ipAddressV4: '198.51.100.1',
              organization: { asn: '64496', asnOrg: 'EXAMPLE-AS', isp: 'Example ISP', org: 'Example Org' },
              country: { countryName: 'Example Country' },
              city: { cityName: 'Example City' },
              geoLocation: { lat: 0, lon: 0 },
            },
            affectedResources: {},
          },
        },
        resourceRole: 'TARGET',
        additionalInfo: { value: '{}', type: 'default' },
        eventFirstSeen: now,
        eventLastSeen: now,
        archived: false,
        count: 1,
      },
      severity: options.severity ?? 8,
      createdAt: now,
      updatedAt: now,
      title: options.title ?? `Credentials for ${options.userName} used from a remote AWS account.`,
      description: `Credentials created exclusively for an EC2 instance were used from an external IP address 198.51.100.1.`,
    },
  };
}

/** A GuardDuty finding about an EC2 instance (Backdoor:EC2/C&CActivity.B). */
export function guardDutyInstanceEvent(options: {
  findingId: string;
  accountId: string;
  instanceId: string;
  severity?: number;
  region?: string;
}): Record<string, unknown> {
  const region = options.region ?? 'us-east-1';
  const now = '2026-11-23T11:02:07.000Z';
  return {
    version: '0',
    id: '0f2e1f3c-5a6b-4c7d-8e9f-0a1b2c3d4e5f',
    'detail-type': 'GuardDuty Finding',
    source: 'aws.guardduty',
    account: options.accountId,
    time: now,
    region,
    resources: [],
    detail: {
      schemaVersion: '2.0',
      accountId: options.accountId,
      region,
      partition: 'aws',
      id: options.findingId,
      arn: `arn:aws:guardduty:${region}:${options.accountId}:detector/12abc34d567e8fa901bc2d34e56789f0/finding/${options.findingId}`,
      type: 'Backdoor:EC2/C&CActivity.B',
      resource: {
        resourceType: 'Instance',
        instanceDetails: {
          instanceId: options.instanceId,
          instanceType: 'm5.large',
          launchTime: '2026-11-20T08:00:00.000Z',
          platform: null,
          productCodes: [],
          iamInstanceProfile: {
            arn: `arn:aws:iam::${options.accountId}:instance-profile/web`,
            id: 'AIPAEXAMPLE12345678',
          },
          networkInterfaces: [
            {
              networkInterfaceId: 'eni-0123456789abcdef0',
              privateIpAddress: '10.0.0.1',
              subnetId: 'subnet-99999999',
              vpcId: 'vpc-99999999',
              securityGroups: [{ groupName: 'web', groupId: 'sg-0123456789abcdef0' }],
              publicIp: '198.51.100.2',
            },
          ],
          outpostArn: null,
          tags: [{ key: 'Name', value: 'web-1' }],
          instanceState: 'running',
          availabilityZone: `${region}a`,
          imageId: 'ami-99999999',
          imageDescription: 'example',
        },
      },
      service: { serviceName: 'guardduty', archived: false, count: 3, resourceRole: 'ACTOR' },
      severity: options.severity ?? 8,
      createdAt: now,
      updatedAt: now,
      title: `EC2 instance ${options.instanceId} is querying a domain name associated with a known command and control server.`,
      description: `EC2 instance ${options.instanceId} is querying algorithmically generated domains.`,
    },
  };
}

/** A Security Hub "Findings - Imported" event with one ASFF finding naming `resources`. */
export function securityHubEvent(options: {
  findingId: string;
  accountId: string;
  label: 'INFORMATIONAL' | 'LOW' | 'MEDIUM' | 'HIGH' | 'CRITICAL';
  resources: Record<string, unknown>[];
  title?: string;
  region?: string;
  workflowStatus?: 'NEW' | 'NOTIFIED' | 'RESOLVED' | 'SUPPRESSED';
}): Record<string, unknown> {
  const region = options.region ?? 'us-east-1';
  const now = '2026-11-23T12:00:00.000Z';
  return {
    version: '0',
    id: 'CWE-event-id',
    'detail-type': 'Security Hub Findings - Imported',
    source: 'aws.securityhub',
    account: options.accountId,
    time: now,
    region,
    resources: [`arn:aws:securityhub:${region}::product/aws/guardduty/${options.findingId}`],
    detail: {
      findings: [
        {
          SchemaVersion: '2018-10-08',
          Id: options.findingId,
          ProductArn: `arn:aws:securityhub:${region}::product/aws/guardduty`,
          ProductName: 'GuardDuty',
          CompanyName: 'Amazon',
          Region: region,
          GeneratorId: 'arn:aws:guardduty:us-east-1:123456789012:detector/12abc34d567e8fa901bc2d34e56789f0',
          AwsAccountId: options.accountId,
          Types: ['TTPs/Command and Control/Backdoor:EC2-C&CActivity.B'],
          FirstObservedAt: now,
          LastObservedAt: now,
          CreatedAt: now,
          UpdatedAt: now,
          Severity: {
            Label: options.label,
            Normalized: { INFORMATIONAL: 0, LOW: 1, MEDIUM: 40, HIGH: 70, CRITICAL: 90 }[options.label],
          },
          Title: options.title ?? 'EC2 instance is communicating with a command and control server.',
          Description: 'The instance and the role it runs as are involved in command and control activity.',
          Resources: options.resources,
          WorkflowState: 'NEW',
          Workflow: { Status: options.workflowStatus ?? 'NEW' },
          RecordState: 'ACTIVE',
        },
      ],
    },
  };
}

/** An ASFF AwsEc2Instance resource. */
export function asffInstance(accountId: string, instanceId: string, region = 'us-east-1') {
  return {
    Type: 'AwsEc2Instance',
    Id: `arn:aws:ec2:${region}:${accountId}:instance/${instanceId}`,
    Partition: 'aws',
    Region: region,
    Details: {
      AwsEc2Instance: {
        Type: 'm5.large',
        ImageId: 'ami-99999999',
        IpV4Addresses: ['10.0.0.1'],
        IamInstanceProfileArn: `arn:aws:iam::${accountId}:instance-profile/web`,
        VpcId: 'vpc-99999999',
        SubnetId: 'subnet-99999999',
        LaunchedAt: '2026-11-20T08:00:00.000Z',
      },
    },
  };
}

/** An ASFF AwsIamRole resource. */
export function asffRole(accountId: string, roleName: string, path = '/') {
  return {
    Type: 'AwsIamRole',
    Id: `arn:aws:iam::${accountId}:role${path}${roleName}`,
    Partition: 'aws',
    Region: 'us-east-1',
    Details: {
      AwsIamRole: {
        RoleName: roleName,
        RoleId: 'AROAEXAMPLE1234567890',
        Path: path,
        CreateDate: '2026-01-01T00:00:00.000Z',
        MaxSessionDuration: 3600,
      },
    },
  };
}

/** An ASFF AwsIamAccessKey resource (the key id as GuardDuty's integration names it). */
export function asffAccessKey(accountId: string, accessKeyId: string, principalName: string) {
  return {
    Type: 'AwsIamAccessKey',
    Id: `AWS::IAM::AccessKey:${accessKeyId}`,
    Partition: 'aws',
    Region: 'us-east-1',
    Details: {
      AwsIamAccessKey: {
        AccessKeyId: accessKeyId,
        AccountId: accountId,
        PrincipalId: 'AIDACKCEVSQ6C2EXAMPLE',
        PrincipalName: principalName,
        PrincipalType: 'IAMUser',
        Status: 'Active',
      },
    },
  };
}
