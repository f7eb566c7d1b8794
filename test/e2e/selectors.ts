// Workbench DOM selectors, pinned to VS Code 1.100 (code-server 4.100.3). VS Code renames these
// classes between releases: when code-server is upgraded, check this file first.
export const VSCODE_VERSION = '1.100';

export const sel = {
  workbench: '.monaco-workbench',
  /** the workbench is interactive once the status bar and activity bar are drawn */
  ready: '.monaco-workbench .part.statusbar',
  activityBarItem: (label: string) => `.part.activitybar .action-item a.action-label[aria-label^="${label}"]`,
  activityBarItemChecked: (label: string) => `.part.activitybar .action-item.checked a.action-label[aria-label^="${label}"]`,
  sideBar: '.part.sidebar',
  sideBarTitle: '.part.sidebar .composite.title h2',
  /** a view's collapsible header in the side bar, e.g. "GPUs" */
  viewHeader: (title: string) => `.part.sidebar .pane-header[aria-label^="${title}"]`,
  viewPane: (title: string) => `.part.sidebar .pane:has(.pane-header[aria-label^="${title}"])`,
  treeRow: '.monaco-list-row',
  treeTwistie: '.monaco-tl-twistie',
  welcomeView: '.welcome-view-content',
  quickInput: '.quick-input-widget',
  quickInputBox: '.quick-input-widget input.input',
  quickInputRow: '.quick-input-widget .quick-input-list .monaco-list-row',
  notificationToast: '.notifications-toasts .notification-toast',
  notificationMessage: '.notifications-toasts .notification-list-item-message',
  editorTab: (title: string) => `.tabs-container .tab[aria-label^="${title}"]`,
  activeEditorTab: '.tabs-container .tab.active',
  /** the tab of a file's editor (a webview's tab may have a title starting the same) */
  fileTab: (name: string) => `.tabs-container .tab[data-resource-name="${name}"]`,
  /** the close button inside a tab */
  tabClose: '.tab-actions .action-label',
  /** a webview's content sits two frames deep */
  webviewOuter: 'iframe.webview.ready',
  webviewInner: 'iframe#active-frame',
  /** the notebook toolbar's kernel picker ("Select Kernel", or the kernel's name once picked) */
  notebookKernelButton: '.notebook-toolbar-container .kernel-action-view-item',
  /** the code lines of a notebook's cells */
  notebookCellCode: '.notebook-editor .cell-editor-container .view-line',
  statusBarItem: (text: string) => `.part.statusbar .statusbar-item:has-text("${text}")`,
} as const;
