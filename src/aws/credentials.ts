/** The shape of temporary credentials handed to SDK clients (kept local to avoid a types dependency). */
export interface TemporaryCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration?: Date | undefined;
  accountId?: string;
}
