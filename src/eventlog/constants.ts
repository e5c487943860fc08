/**
 * Constants of the TCG PC Client Platform Firmware Profile (PFP) event log and of the UEFI
 * structures it carries. Values from PFP §10.4.1 (event types), §10.4.5.1 (Spec ID event) and the
 * UEFI specification (variable GUIDs, EFI_SIGNATURE_LIST types).
 */

/** Event types (PFP §10.4.1, "Event Types"). */
export const EV = {
  PREBOOT_CERT: 0x00000000,
  POST_CODE: 0x00000001,
  UNUSED: 0x00000002,
  NO_ACTION: 0x00000003,
  SEPARATOR: 0x00000004,
  ACTION: 0x00000005,
  EVENT_TAG: 0x00000006,
  S_CRTM_CONTENTS: 0x00000007,
  S_CRTM_VERSION: 0x00000008,
  CPU_MICROCODE: 0x00000009,
  PLATFORM_CONFIG_FLAGS: 0x0000000a,
  TABLE_OF_DEVICES: 0x0000000b,
  COMPACT_HASH: 0x0000000c,
  IPL: 0x0000000d,
  IPL_PARTITION_DATA: 0x0000000e,
  NONHOST_CODE: 0x0000000f,
  NONHOST_CONFIG: 0x00000010,
  NONHOST_INFO: 0x00000011,
  OMIT_BOOT_DEVICE_EVENTS: 0x00000012,
  POST_CODE2: 0x00000013,
  EFI_EVENT_BASE: 0x80000000,
  EFI_VARIABLE_DRIVER_CONFIG: 0x80000001,
  EFI_VARIABLE_BOOT: 0x80000002,
  EFI_BOOT_SERVICES_APPLICATION: 0x80000003,
  EFI_BOOT_SERVICES_DRIVER: 0x80000004,
  EFI_RUNTIME_SERVICES_DRIVER: 0x80000005,
  EFI_GPT_EVENT: 0x80000006,
  EFI_ACTION: 0x80000007,
  EFI_PLATFORM_FIRMWARE_BLOB: 0x80000008,
  EFI_HANDOFF_TABLES: 0x80000009,
  EFI_PLATFORM_FIRMWARE_BLOB2: 0x8000000a,
  EFI_HANDOFF_TABLES2: 0x8000000b,
  EFI_VARIABLE_BOOT2: 0x8000000c,
  EFI_GPT_EVENT2: 0x8000000d,
  EFI_HCRTM_EVENT: 0x80000010,
  EFI_VARIABLE_AUTHORITY: 0x800000e0,
  EFI_SPDM_FIRMWARE_BLOB: 0x800000e1,
  EFI_SPDM_FIRMWARE_CONFIG: 0x800000e2,
} as const;

const EV_NAMES = new Map<number, string>(Object.entries(EV).map(([k, v]) => [v, `EV_${k}`]));

/** Spec name of an event type ("EV_SEPARATOR"), or hex when the type is not in the PFP. */
export function eventTypeName(type: number): string {
  return EV_NAMES.get(type) ?? `0x${type.toString(16).padStart(8, '0')}`;
}

/** TCG_EfiSpecIdEvent.signature of a crypto-agile log (PFP §10.4.5.1), NUL included. */
export const SPEC_ID_EVENT03 = 'Spec ID Event03\0';
/** TCG_EfiSpecIdEventStruct.signature of a TPM 1.2 (SHA-1) log that carries a Spec ID event. */
export const SPEC_ID_EVENT00 = 'Spec ID Event00\0';
/** Signature of the EV_NO_ACTION event that records the locality of TPM2_Startup (PFP §10.4.5.3). */
export const STARTUP_LOCALITY_SIGNATURE = 'StartupLocality\0';

/** EV_EFI_ACTION strings that firmware measures into PCR 5 around ExitBootServices() (PFP §10.4.4). */
export const EBS_INVOCATION = 'Exit Boot Services Invocation';
export const EBS_SUCCESS = 'Exit Boot Services Returned with Success';

/** UEFI GUIDs in their canonical text form (lower case). */
export const GUID = {
  /** EFI_GLOBAL_VARIABLE: SecureBoot, PK, KEK, Boot####, BootOrder. */
  EFI_GLOBAL_VARIABLE: '8be4df61-93ca-11d2-aa0d-00e098032b8c',
  /** EFI_IMAGE_SECURITY_DATABASE_GUID: db, dbx, dbt, dbr. */
  EFI_IMAGE_SECURITY_DATABASE: 'd719b2cb-3d3a-4596-a3bc-dad00e67656f',
  /** shim's variables (MokList, MokListX, SbatLevel, MokListTrusted). */
  SHIM_LOCK: '605dab50-e046-4300-abb6-3dd810dd8b23',
  /** EFI_SIGNATURE_LIST.SignatureType of an X.509 certificate. */
  EFI_CERT_X509: 'a5c059a1-94e4-4aa7-87b5-ab155c2bf072',
  /** EFI_SIGNATURE_LIST.SignatureType of a SHA-256 image hash. */
  EFI_CERT_SHA256: 'c1c41626-504c-4092-aca9-41f936934328',
} as const;
